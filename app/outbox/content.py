"""What a message says: the fields every template may use when it is rendered (queue time), and
the customer's own link put in when it is sent (send time), so that no usable link is ever stored."""
from .. import portal_links


def standard_fields(config, complaint, number) -> dict:
    """Fields every template may use besides the diagram's payload; none of them personal."""
    received = complaint.received_at.isoformat() if complaint else None    # the `datetime` filter writes it
    return {"complaint_number": number or "", "portal_url": portal_links.LINK_MARK,
            "company": config.get("COMPANY_NAME", ""), "hotline": config.get("SERVICE_HOTLINE", ""),
            "received_at": received}


def render_context(config, complaint, number, payload) -> dict:
    """The payload the diagram passed, with the standard fields (which win on a clash)."""
    return {**(payload or {}), **standard_fields(config, complaint, number)}


def link_for(config, key: str) -> str:
    """The customer's link carried by the message with idempotency key `key`."""
    token = portal_links.token_for(portal_links.secret(config), key)
    return portal_links.url(config["PUBLIC_BASE_URL"], token)


def with_link(text, link: str) -> str:
    """`text` with its link mark replaced by the real link."""
    return (text or "").replace(portal_links.LINK_MARK, link)
