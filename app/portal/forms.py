"""A task form as the customer sees it. A form the customer may answer on their page carries
`x-customer` in its JSON Schema: the title and description written for them, and optionally, per
property, the question as the customer reads it (the staff's wording asks about "the customer"):

    "x-customer": {
      "title": "请确认处理结果", "x-title-en": "Please confirm the result",
      "description": "…", "x-description-en": "…",
      "properties": {"satisfied": {"title": "您对处理结果满意吗？", "x-title-en": "Are you satisfied?"}}
    }

`"x-customer": true` offers the form with its own wording (as a survey written for customers has).
The form is rendered and its answers read by app.web.formrender and checked against the unchanged
schema, exactly as the staff's form is."""

# Words the customer's version may replace, in pairs: replacing one drops the staff's other one.
WORDING = (("title", "x-title-en"), ("description", "x-description-en"), ("x-enumNames", "x-enumNames-en"))


def customer_schema(schema: dict) -> dict:
    """The schema with the customer's wording in place of the staff's (the staff's form description,
    meant for handlers, is then never shown); a schema without such wording as it is."""
    wording = schema.get("x-customer")
    if not isinstance(wording, dict):
        return schema
    shown = {k: v for k, v in schema.items() if k not in ("description", "x-description-en")}
    shown = _reworded(shown, wording)
    props = wording.get("properties") or {}
    shown["properties"] = {name: _reworded(prop, props.get(name) or {})
                           for name, prop in schema.get("properties", {}).items()}
    return shown


def _reworded(node: dict, wording: dict) -> dict:
    out = dict(node)
    for pair in WORDING:
        if any(key in wording for key in pair):
            for key in pair:
                out.pop(key, None)
                if key in wording:
                    out[key] = wording[key]
    return out
