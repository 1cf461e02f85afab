"""Reject reasons: the one list of the codes stored in ``rejects.reason`` (README, "Reasons").

A message, or a reading of one, is rejected with exactly one of these. Decoding and the ingest
pipeline reject whole messages or readings with the string codes; validation of decoded readings
gives one :class:`Reason` per reading (vectorized, so a small integer), whose lower-case name is
the code stored.
"""

from __future__ import annotations

from enum import IntEnum

# Found while decoding a payload (ingest.decode, ingest.senml).
MALFORMED = "malformed_payload"
BAD_STRUCTURE = "bad_structure"
DUPLICATE_KEY = "duplicate_key"
MISSING_TS = "missing_ts"
BAD_TS = "bad_ts"
WRONG_TYPE = "wrong_type"
TOO_LARGE = "payload_too_large"
TOO_MANY = "too_many_readings"
BAD_UNIT = "bad_unit"
# Found by the ingest pipeline and writer.
BAD_TOPIC = "bad_topic"
UNKNOWN_SENSOR = "unknown_sensor"
KIND_MISMATCH = "kind_mismatch"
DB_REJECTED = "db_rejected"


class Reason(IntEnum):
    """Why validation rejected a reading (``OK``: it did not). ``code`` is the stored reason."""

    OK = 0
    UNKNOWN_METRIC = 1  # not in the catalog, or not a metric of this sensor's kind
    NON_FINITE = 2  # NaN or +-Infinity
    OUT_OF_RANGE = 3  # outside the catalog's [min_value, max_value]
    TS_IN_FUTURE = 4  # later than now + tolerance
    TS_BEFORE_INSTALL = 5  # earlier than the sensor's installation time

    @property
    def code(self) -> str:
        return self.name.lower()


# Every code that can be stored, for documentation and checks.
CODES: frozenset[str] = frozenset(
    {
        MALFORMED, BAD_STRUCTURE, DUPLICATE_KEY, MISSING_TS, BAD_TS, WRONG_TYPE, TOO_LARGE,
        TOO_MANY, BAD_UNIT, BAD_TOPIC, UNKNOWN_SENSOR, KIND_MISMATCH, DB_REJECTED,
    }
    | {r.code for r in Reason if r is not Reason.OK}
)  # fmt: skip
# The stored code of each validation reason, by its integer value.
VALIDATION_CODES: dict[int, str] = {int(r): r.code for r in Reason}
