"""Every error kaisec raises on purpose, each with a stable code.

The codes are a contract (DESIGN.md, "Error codes"; docs/errors.md): scripts
match on them, so a code is never reused for a different meaning. Families
follow where the fault lies: the package, the manifest, the install, the
permission system, the user's credential.

Misuse of the library by its caller (wrong call order, a bad argument type)
stays a plain ``ValueError``/``RuntimeError``: those are bugs, not input.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppNotFoundError",
    "AuthRequiredError",
    "CertificateExpiredError",
    "ConfigError",
    "CorruptPackageError",
    "DeviceError",
    "DownloadError",
    "DuplicateEntryError",
    "DuplicateOriginError",
    "EntryMissingError",
    "ImplicitPermissionError",
    "InstallBusyError",
    "InstallError",
    "InvalidKeyError",
    "InvalidManifestError",
    "InvalidOriginError",
    "InvalidRequestError",
    "InvalidSecurityLevelError",
    "InvalidSignatureError",
    "KaisecError",
    "ManifestError",
    "ManifestMimeTypeError",
    "MissingManifestError",
    "ModifiedEntryError",
    "NotRequestedError",
    "NotSignedError",
    "PackageError",
    "PackageTooLargeError",
    "PermissionDeniedError",
    "PinLockedError",
    "PinRequiredError",
    "PolicyError",
    "ResourceNotFoundError",
    "SignatureError",
    "SignerMismatchError",
    "UninstallForbiddenError",
    "UnknownPermissionError",
    "UnsafePathError",
    "UnsignedEntryError",
    "UntrustedSignerError",
    "VersionDowngradeError",
    "WeakAlgorithmError",
    "error_codes",
]


class KaisecError(Exception):
    """Base of every kaisec error; carries a stable ``code``."""

    code: ClassVar[str] = "KAISEC_ERROR"
    #: Longer help for people; the CLI prints it, ``--json`` leaves it out.
    hint: ClassVar[str] = ""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error object: ``{"code", "message", ...details}``."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for key, value in self.details.items():
            if key not in out:
                out[key] = value
        return out

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- the package (ZIP and JAR signature) --------------------------------------


class PackageError(KaisecError):
    """The package file itself is unacceptable."""


class CorruptPackageError(PackageError):
    """The ZIP structure is broken, ambiguous or uses unsupported features."""

    code = "CORRUPT_PACKAGE"


class UnsafePathError(PackageError):
    """An entry name could escape the package or collide with another."""

    code = "UNSAFE_PATH"


class DuplicateEntryError(PackageError):
    """Two entries carry the same name."""

    code = "DUPLICATE_ENTRY"


class PackageTooLargeError(PackageError):
    """A size, count or compression-ratio limit was exceeded."""

    code = "PACKAGE_TOO_LARGE"


class SignatureError(PackageError):
    """The package's JAR signature does not hold."""


class NotSignedError(SignatureError):
    """The package carries no signature at all."""

    code = "NOT_SIGNED"
    hint = "Sign it with `kaisec sign`, or turn developer mode on to install it as a PWA."


class InvalidSignatureError(SignatureError):
    """The signature files are malformed or the signature does not verify."""

    code = "INVALID_SIGNATURE"


class UntrustedSignerError(SignatureError):
    """The signer's chain does not reach a trusted root."""

    code = "UNTRUSTED_SIGNER"
    hint = "Add the signer's root with `kaisec trust add --class signed|core ROOT.pem`."


class CertificateExpiredError(SignatureError):
    """A certificate of the chain is outside its validity period."""

    code = "CERTIFICATE_EXPIRED"


class WeakAlgorithmError(SignatureError):
    """SHA-1, or an RSA key under 2048 bits, without the legacy option."""

    code = "WEAK_ALGORITHM"


class ModifiedEntryError(SignatureError):
    """An entry's content does not match its signed digest."""

    code = "MODIFIED_ENTRY"


class UnsignedEntryError(SignatureError):
    """An entry is present in the package but not listed in the signed manifest."""

    code = "UNSIGNED_ENTRY"


class EntryMissingError(SignatureError):
    """The signed manifest lists an entry the package does not have."""

    code = "ENTRY_MISSING"


# --- the app manifest ----------------------------------------------------------


class ManifestError(KaisecError):
    """The app manifest is unacceptable."""


class MissingManifestError(ManifestError):
    """The package or folder holds no app manifest."""

    code = "MISSING_MANIFEST"


class InvalidManifestError(ManifestError):
    """The manifest fails validation; ``problems`` lists every one with its field path."""

    code = "INVALID_MANIFEST"

    def __init__(self, message: str, *, problems: list[str] | None = None, **details: Any) -> None:
        super().__init__(message, problems=list(problems or []), **details)
        self.problems: list[str] = list(problems or [])


class InvalidOriginError(ManifestError):
    """A URL or origin in the manifest is malformed or leaves the app's origin."""

    code = "INVALID_ORIGIN"


class ManifestMimeTypeError(ManifestError):
    """A hosted manifest was served with the wrong Content-Type."""

    code = "MANIFEST_MIME_TYPE"


class InvalidSecurityLevelError(ManifestError):
    """The manifest asks for a trust class its signature does not prove."""

    code = "INVALID_SECURITY_LEVEL"


# --- installing and updating ---------------------------------------------------


class InstallError(KaisecError):
    """The install, update or uninstall cannot go ahead."""


class DuplicateOriginError(InstallError):
    """Another installed app already has this origin."""

    code = "DUPLICATE_ORIGIN"


class SignerMismatchError(InstallError):
    """The update is signed by a key the installed version did not name."""

    code = "SIGNER_MISMATCH"


class VersionDowngradeError(InstallError):
    """The update's version is not higher than the installed one."""

    code = "VERSION_DOWNGRADE"


class AppNotFoundError(InstallError):
    """No installed app has that id, name or origin."""

    code = "APP_NOT_FOUND"


class ResourceNotFoundError(InstallError):
    """An ``app://`` URL names nothing inside that app's package."""

    code = "RESOURCE_NOT_FOUND"


class UninstallForbiddenError(InstallError):
    """The app is preloaded and marked non-removable."""

    code = "UNINSTALL_FORBIDDEN"


class DownloadError(InstallError):
    """A manifest or package could not be fetched (network, status, size or time limit)."""

    code = "DOWNLOAD_FAILED"


class InstallBusyError(InstallError):
    """Another install, update or uninstall holds the home's install lock."""

    code = "INSTALL_BUSY"


class ConfigError(KaisecError):
    """A configuration file (policy overrides, settings) is malformed."""

    code = "INVALID_CONFIG"


class InvalidKeyError(KaisecError):
    """A key or certificate given to kaisec is unreadable, of an unsupported kind, or mismatched."""

    code = "INVALID_KEY"


# --- permissions -----------------------------------------------------------------


class PolicyError(KaisecError):
    """A permission request or change is refused."""


class PermissionDeniedError(PolicyError):
    """The app does not hold the permission."""

    code = "PERMISSION_DENIED"


class ImplicitPermissionError(PolicyError):
    """Only explicit (prompt-class) permissions may be changed by the user."""

    code = "IMPLICIT_PERMISSION"


class NotRequestedError(PolicyError):
    """The app's manifest does not request that permission, so nobody can grant it."""

    code = "PERMISSION_NOT_REQUESTED"


class UnknownPermissionError(PolicyError):
    """The name is not a permission of the table (nor a default permission)."""

    code = "UNKNOWN_PERMISSION"


# --- the device (simulated hardware) and the gateway --------------------------------


class DeviceError(KaisecError):
    """The device refused or failed an operation; ``reason`` says which (e.g. NO_SIM, NOT_FOUND)."""

    code = "DEVICE_ERROR"


class InvalidRequestError(KaisecError):
    """A gateway request is malformed: bad JSON, unknown service or method, wrong parameters."""

    code = "INVALID_REQUEST"


# --- the user's credential --------------------------------------------------------


class AuthRequiredError(KaisecError):
    """Authentication failed or is missing; one answer for every reason."""

    code = "AUTH_REQUIRED"


class PinRequiredError(AuthRequiredError):
    """A PIN is set and this change needs it (or the PIN given is wrong)."""

    code = "PIN_REQUIRED"


class PinLockedError(AuthRequiredError):
    """Too many wrong PINs: wait for the back-off to pass."""

    code = "PIN_LOCKED"


def error_codes() -> dict[str, str]:
    """Every concrete code and its one-line meaning, for the docs and ``--json`` consumers."""
    out: dict[str, str] = {}
    stack: list[type[KaisecError]] = [KaisecError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.code != "KAISEC_ERROR" and "code" in cls.__dict__:
            out[cls.code] = (cls.__doc__ or "").strip().splitlines()[0]
    return dict(sorted(out.items()))
