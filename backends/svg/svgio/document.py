"""The XML of an SVG: parsed safely (defusedxml, an element count bound), and the names of its elements."""
from __future__ import annotations

from ...core.errors import InputError


def parse_document(data: bytes, max_elements: int):
    """The root element of SVG bytes; InputError (one sentence) when they are not well-formed XML, declare
    entities, hold more than max_elements elements, or are not an <svg>."""
    import io
    import xml.etree.ElementTree as ET

    import defusedxml
    import defusedxml.ElementTree as DET

    root, count = None, 0
    try:
        for event, elem in DET.iterparse(io.BytesIO(data), events=("start",)):
            if root is None:
                root = elem
            count += 1
            if count > max_elements:
                raise InputError(f"The SVG has more than {max_elements} elements, too many to import.")
    except InputError:
        raise
    except defusedxml.DefusedXmlException:
        raise InputError("The SVG declares XML entities or external references, which are refused for safety.") \
            from None
    except ET.ParseError as err:
        line, col = getattr(err, "position", (0, 0))
        raise InputError(f"The SVG is not well-formed XML (line {line}, column {col}).") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise InputError(f"The SVG could not be parsed: {err}.") from None
    if root is None or local_name(root.tag) != "svg":
        tag = local_name(root.tag) if root is not None else "nothing"
        raise InputError(f"The file's root element is <{tag}>, not <svg>: it is not an SVG image.")
    return root


def local_name(tag) -> str:
    """An element's tag without its namespace ("" for comments and processing instructions)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def namespace(tag) -> str:
    """An element's namespace URI ("" when it has none)."""
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def describe(elem) -> str:
    """'<path>' or '<path id="logo">' for messages: printable, short."""
    tag = "".join(ch if ch.isprintable() else "?" for ch in local_name(elem.tag)[:30]) or "element"
    ident = elem.get("id")
    if ident:
        ident = "".join(ch if ch.isprintable() and ch not in "\"<>" else "?" for ch in ident[:40])
        return f'<{tag} id="{ident}">'
    return f"<{tag}>"
