"""The property-graph model: vertex labels, edge labels and ids.

Vertices are entities, not transactions, so the graph grows with entities rather than
with traffic. Ids are ``<label>:<value>``: an account ``123`` and a phone ``123`` never
collide.
"""

from __future__ import annotations

ACCOUNT = "account"
CARD = "card"
DEVICE = "device"
IP = "ip"
EMAIL = "email"
PHONE = "phone"
MERCHANT = "merchant"
ALERT = "alert"
CASE = "case"

ENTITY_LABELS = (ACCOUNT, CARD, DEVICE, IP, EMAIL, PHONE, MERCHANT)
#: identifiers through which accounts can be linked into a ring
SHARED_IDENTIFIER_LABELS = (DEVICE, CARD, IP, EMAIL, PHONE)

# Edge labels
USES = "uses"  # account -> card / device / ip
HAS_EMAIL = "has_email"  # account -> email
HAS_PHONE = "has_phone"  # account -> phone
PAYS = "pays"  # account -> merchant
TRANSFERS_TO = "transfers_to"  # account -> account
FLAGGED_BY = "flagged_by"  # entity -> alert
MEMBER_OF = "member_of"  # account -> case
ALERT_OF = "alert_of"  # alert -> case (ring-member alerts link to the case that raised them)

IDENTIFIER_EDGE_LABELS = (USES, HAS_EMAIL, HAS_PHONE)

#: canonical transaction field -> (vertex label, edge label from the account)
FIELD_LINKS = {
    "card_id": (CARD, USES),
    "device_id": (DEVICE, USES),
    "ip": (IP, USES),
    "email": (EMAIL, HAS_EMAIL),
    "phone": (PHONE, HAS_PHONE),
    "merchant_id": (MERCHANT, PAYS),
}

#: the entity types an investigation can start from (micro-analysis flags and hand-started ones)
ENTITY_TYPES = {
    "account": ACCOUNT,
    "card": CARD,
    "device": DEVICE,
    "ip": IP,
    "email": EMAIL,
    "phone": PHONE,
    "merchant": MERCHANT,
}


def vertex_id(label: str, value: str) -> str:
    """The id of an entity vertex: ``account:1234-5678-22``."""
    return f"{label}:{value}"


def split_vertex_id(vid: str) -> tuple[str, str]:
    label, _, value = vid.partition(":")
    return label, value


def _escape_part(part: str) -> str:
    if "%" not in part and "|" not in part:
        return part
    # '%' first, so an escaped '|' can never be mistaken for a literal "%7C" in the input
    return part.replace("%", "%25").replace("|", "%7C")


def edge_id(label: str, out_id: str, in_id: str) -> str:
    """Edges get deterministic ids too, so a replayed mergeE finds the same edge.

    The parts are joined with ``|`` after escaping ``%`` and ``|`` in each, so two different
    (out, label, in) triples never share an id, whatever characters the identifiers hold.
    Ids without those characters are unchanged.
    """
    return f"{_escape_part(out_id)}|{_escape_part(label)}|{_escape_part(in_id)}"
