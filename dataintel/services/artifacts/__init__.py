"""Job files: storage by job id and part number, and signed download URLs for them."""

from dataintel.services.artifacts.parts import StoredPart, parts_of
from dataintel.services.artifacts.signing import (
    DOWNLOAD_PATH,
    DownloadSigner,
    SignatureProblem,
    SignedUrl,
)
from dataintel.services.artifacts.storage import (
    ArtifactStorage,
    FilesystemArtifactStorage,
    PartSink,
)

__all__ = [
    "DOWNLOAD_PATH",
    "ArtifactStorage",
    "DownloadSigner",
    "FilesystemArtifactStorage",
    "PartSink",
    "SignatureProblem",
    "SignedUrl",
    "StoredPart",
    "parts_of",
]
