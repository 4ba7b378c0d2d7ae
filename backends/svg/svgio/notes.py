"""What an import drew approximately or skipped, counted per kind and said in one short sentence per kind
("2 gradients were drawn as their mean colour.") for `Scene.warnings`."""
from __future__ import annotations


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


_NOTES = {
    # key -> sentence for a count n; one sentence per kind, in the order first met
    "gradient": lambda n: f"{_plural(n, 'gradient was', 'gradients were')} drawn as {'its' if n == 1 else 'their'} "
                          "mean colour.",
    "pattern": lambda n: f"{_plural(n, 'pattern fill was', 'pattern fills were')} drawn with the fallback colour or "
                         "left empty.",
    "missing-paint": lambda n: f"{_plural(n, 'paint refers', 'paints refer')} to a missing gradient or pattern and "
                               f"{'was' if n == 1 else 'were'} drawn with the fallback colour or left empty.",
    "clip-path": lambda n: f"{_plural(n, 'element with a clip path was', 'elements with a clip path were')} drawn "
                           "unclipped.",
    "mask": lambda n: f"{_plural(n, 'element with a mask was', 'elements with a mask were')} drawn unmasked.",
    "filter": lambda n: f"{_plural(n, 'element with a filter was', 'elements with a filter were')} drawn without it.",
    "marker": lambda n: f"{_plural(n, 'shape with markers was', 'shapes with markers were')} drawn without them.",
    "dash": lambda n: f"{_plural(n, 'dashed stroke was', 'dashed strokes were')} drawn solid.",
    "caps": lambda n: f"{_plural(n, 'stroke', 'strokes')} with butt or square caps or miter or bevel joins "
                      f"{'was' if n == 1 else 'were'} drawn with round ones.",
    "zero-scale": lambda n: f"{_plural(n, 'element', 'elements')} with a zero-scale transform "
                            f"{'was' if n == 1 else 'were'} not drawn, as the SVG spec says.",
    "nested-svg": lambda n: f"{_plural(n, 'nested <svg> was', 'nested <svg> elements were')} drawn without clipping "
                            "to its viewport.",
    "style": lambda n: f"{_plural(n, '<style> sheet was', '<style> sheets were')} ignored (only attributes and "
                       'style="..." are read).',
    "script": lambda n: f"{_plural(n, '<script> element was', '<script> elements were')} ignored (never run).",
    "animation": lambda n: f"{_plural(n, 'animation element was', 'animation elements were')} ignored; the static "
                           "picture is drawn.",
}


class Notes:
    """The counts of one import, in the order each kind was first met: `note(key)` for a kind of `_NOTES`,
    "skip:<tag>" for a skipped element, "path-data" for malformed path data (with `path_error_at`, where the
    first one broke), plus the gradients drawn as their mean and the lengths that could not be read."""

    def __init__(self):
        self.counts: dict[str, int] = {}            # warning kind -> count, insertion-ordered
        self.gradients_used: set[str] = set()
        self.lengths: list[str] = []                # lengths that could not be read, where and why
        self.path_error_at = ""

    def note(self, key: str, n: int = 1):
        self.counts[key] = self.counts.get(key, 0) + n

    def malformed_path(self, d: str, offset: int):
        """Path data `d` broken at `offset`: counted, and for the first one, the text before the break (so the
        path can be found in the file)."""
        if "path-data" not in self.counts:
            head = " ".join(d[:offset].split())
            self.path_error_at = head if len(head) <= 40 else "..." + head[-37:]
        self.note("path-data")

    def gradient_used(self, ref: str):
        """A paint drawn as gradient `ref`'s mean colour: one sentence counts the distinct gradients."""
        self.gradients_used.add(ref)
        self.counts.setdefault("gradient-uses", 0)

    def sentences(self) -> list[str]:
        out = []
        for key, n in self.counts.items():
            if key == "gradient-uses":                       # distinct gradients, not uses
                out.append(_NOTES["gradient"](len(self.gradients_used)))
            elif key.startswith("skip:"):
                tag = key[5:]
                out.append(f"{_plural(n, f'<{tag}> element was', f'<{tag}> elements were')} skipped.")
            elif key == "path-data":
                out.append(f"{_plural(n, 'path has', 'paths have')} malformed data (d) and "
                           f"{'was' if n == 1 else 'were'} drawn up to the first error (the first after "
                           f"{self.path_error_at!r}), as the SVG spec says.")
            elif key in _NOTES:
                out.append(_NOTES[key](n))
        if self.lengths:
            distinct = list(dict.fromkeys(self.lengths))
            out.append(f"{_plural(len(self.lengths), 'length', 'lengths')} could not be read ("
                       f"{'; '.join(distinct[:5])}{'; ...' if len(distinct) > 5 else ''}) and the default was used "
                       "(the units read are px, pt, pc, mm, cm, in, em, ex and %).")
        return out
