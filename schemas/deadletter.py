"""Why a message became a dead letter: the reason codes are a contract.

The stream workers set them, the simulator predicts them in its ground truth,
dashboards group by them.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    BAD_JSON = "bad_json"  # not UTF-8 or not parseable JSON
    NOT_AN_OBJECT = "not_an_object"  # JSON, but not an object
    OVERSIZED = "oversized"  # larger than the configured max_message_bytes
    MISSING_FIELD = "missing_field"  # a required field is absent
    INVALID_FIELD = "invalid_field"  # wrong type, bad value, unexpected field
    WRONG_TOPIC = "wrong_topic"  # unknown event_type, or one that belongs to another topic
    UNKNOWN_CLUSTER = "unknown_cluster"
    UNKNOWN_BOOTH = "unknown_booth"
    UNKNOWN_EXHIBITOR = "unknown_exhibitor"
    # An unexpected error while processing this one message (the error is the detail):
    # the message is kept here and its batch goes on.
    PROCESSING_ERROR = "processing_error"
    # The store refused the row itself (a refused insert is bisected down to its rows).
    STORE_REFUSED = "store_refused"
    # An identity record (the stream's own line on the internal identity topic, see
    # schemas/identity.py) that the resolver cannot read: a writer/reader mismatch or a
    # corrupted message, never a user's input, so never raw-input reasons.
    IDENTITY_BAD_JSON = "identity_bad_json"  # not UTF-8 or not parseable JSON
    IDENTITY_INVALID = "identity_invalid"  # JSON that breaks the identity record schema


# What a message can be rejected for on its own bytes (the simulator makes each of these);
# the other reasons are faults met while processing or storing it, or identity records
# (internal lines the workers wrote themselves).
INPUT_REASONS = tuple(r for r in Reason if r not in (
    Reason.PROCESSING_ERROR, Reason.STORE_REFUSED, Reason.IDENTITY_BAD_JSON,
    Reason.IDENTITY_INVALID))
