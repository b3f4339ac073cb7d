"""GDPR subject requests (Art. 15 access, Art. 17 erasure) over a declarative privacy map.

``privacy_map`` reads the YAML map, ``requests`` keeps the requests' states and deadlines,
``access`` and ``erasure`` do the work per dataset, ``work`` wraps it as job functions, ``kinds``
registers them with the job system and ``dispatch`` hands verified requests to it.
"""

from dataintel.services.privacy.dispatch import (
    ACCESS_KIND,
    ERASURE_KIND,
    KIND_BY_TYPE,
    JobServiceDispatcher,
    WorkDispatcher,
)
from dataintel.services.privacy.keyed_hash import PrivacyKeyError, keyed_hash, privacy_key
from dataintel.services.privacy.privacy_map import (
    DatasetPrivacy,
    PrivacyMap,
    PrivacyMapError,
    load_privacy_map,
)
from dataintel.services.privacy.requests import (
    NewSubjectRequest,
    RequestLimits,
    SqlSubjectRequestService,
    SubjectRequestFilter,
    SubjectRequestRecord,
    SubjectRequestService,
)
from dataintel.services.privacy.work import (
    PrivacyWork,
    ReplicaInvalidator,
    suppressed_customer_ids,
)

__all__ = [
    "ACCESS_KIND",
    "ERASURE_KIND",
    "KIND_BY_TYPE",
    "DatasetPrivacy",
    "JobServiceDispatcher",
    "NewSubjectRequest",
    "PrivacyKeyError",
    "PrivacyMap",
    "PrivacyMapError",
    "PrivacyWork",
    "ReplicaInvalidator",
    "RequestLimits",
    "SqlSubjectRequestService",
    "SubjectRequestFilter",
    "SubjectRequestRecord",
    "SubjectRequestService",
    "WorkDispatcher",
    "keyed_hash",
    "load_privacy_map",
    "privacy_key",
    "suppressed_customer_ids",
]
