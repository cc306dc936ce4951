"""kaisec: the KaiOS app security framework in Python."""

__version__ = "0.1.0"
