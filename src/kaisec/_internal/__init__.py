"""kaisec internals: ZIP hardening, JAR signature files, PKCS#7/ASN.1. No public API."""
