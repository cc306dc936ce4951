"""Tests of the package layer: ZIP reading/writing, signatures."""
