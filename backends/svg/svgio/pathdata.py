"""SVG path data (M L H V C S Q T A Z, absolute and relative) into subpaths of cubic Beziers.

Everything becomes cubics: lines with their controls at a third and two thirds, quadratics raised exactly,
arcs as one cubic per quarter turn at most (SVG 1.1 implementation notes F.6).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...core.errors import InputError
from .lengths import NUMBER_RE, finite
from .limits import MAX_SEGMENTS


class PathBuilder:
    """Collects subpaths as lists of cubic control points: [p0, c1, c2, p1, c1, c2, p2, ...]."""

    def __init__(self, budget):
        self.subpaths: list[tuple[list[tuple[float, float]], bool]] = []
        self.cur: list[tuple[float, float]] | None = None
        self.budget = budget

    def move(self, p):
        self._flush()
        self.cur = [p]

    def cubic(self, c1, c2, p):
        if self.cur is None:
            self.cur = [(0.0, 0.0)]
        self.budget.spend(1)
        self.cur += [c1, c2, p]

    def line(self, p):
        a = self.cur[-1] if self.cur else (0.0, 0.0)
        self.cubic((a[0] + (p[0] - a[0]) / 3.0, a[1] + (p[1] - a[1]) / 3.0),
                   (a[0] + (p[0] - a[0]) * 2.0 / 3.0, a[1] + (p[1] - a[1]) * 2.0 / 3.0), p)

    def close(self):
        if self.cur is None:
            return
        start = self.cur[0]
        if self.cur[-1] != start:
            self.line(start)
        if len(self.cur) > 1:
            self.subpaths.append((self.cur, True))
        self.cur = None

    def _flush(self):
        if self.cur is not None and len(self.cur) > 1:
            self.subpaths.append((self.cur, False))
        self.cur = None

    def finish(self):
        self._flush()
        return self.subpaths


class SegmentBudget:
    """The curve segments an import may still make: `spend` refuses (InputError) past the limit."""

    def __init__(self, limit):
        self.left = limit
        self.limit = limit

    def spend(self, n):
        self.left -= n
        if self.left < 0:
            raise InputError(f"The SVG has more than {self.limit} curve segments, too many to import; simplify "
                             "its paths.")


_CMD_ARGS = {"m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7, "z": 0}


def parse_path_data(d: str, budget: SegmentBudget | None = None, errors: list | None = None):
    """SVG path data -> list of (points [(x, y), ...] as p0 c1 c2 p1 ..., closed). Errors: InputError.

    Per the SVG error-handling rules, data up to the first error is kept; the error's offset in `d` is appended
    to `errors` when given (the import warns of it).
    """
    pb = PathBuilder(budget or SegmentBudget(MAX_SEGMENTS))
    reader, pen, cmd = _PathReader(d), _Pen(), None
    stopped = None
    while reader.skip() < len(d):
        ch = d[reader.i]
        if ch.isalpha():
            if ch.lower() not in _CMD_ARGS:
                stopped = reader.i                               # error: keep what we have
                break
            cmd = ch
            reader.i += 1
            if cmd in "zZ":
                pb.close()
                pen.close()
                continue
        elif cmd is None or cmd in "zZ":
            stopped = reader.i
            break
        args = reader.arguments(cmd.lower())
        if args is None:
            stopped = reader.i
            break
        cmd = _draw(pb, pen, cmd, args)
    if stopped is not None and errors is not None:
        errors.append(stopped)
    return pb.finish()


class _PathReader:
    """A position `i` in path data, reading its tokens: separators, numbers and arc flags. A token that is not
    there leaves `i` where it was (the error's offset)."""

    def __init__(self, d: str):
        self.d, self.i = d, 0

    def skip(self) -> int:
        d, i, n = self.d, self.i, len(self.d)
        while i < n and (d[i].isspace() or d[i] == ","):
            i += 1
        self.i = i
        return i

    def number(self) -> float | None:
        m = NUMBER_RE.match(self.d, self.i)
        if not m:
            return None
        self.i = m.end()
        return finite(float(m.group(0)), "path data")

    def flag(self) -> float | None:
        if self.i < len(self.d) and self.d[self.i] in "01":
            self.i += 1
            return float(self.d[self.i - 1])
        return None

    def arguments(self, lo: str) -> list[float] | None:
        """The arguments of one command `lo` (lower case), or None where one is missing or malformed."""
        args = []
        for k in range(_CMD_ARGS[lo]):
            self.skip()
            v = self.flag() if lo == "a" and k in (3, 4) else self.number()
            if v is None:
                return None
            args.append(v)
        return args


@dataclass
class _Pen:
    """Where drawing is: the current point, the current subpath's start, the last command (lower case) and its
    last control point (S and T reflect it)."""

    cur: tuple[float, float] = (0.0, 0.0)
    start: tuple[float, float] = (0.0, 0.0)
    last_cmd: str = ""
    last_ctrl: tuple[float, float] | None = None

    def close(self):
        self.cur = self.start
        self.last_cmd, self.last_ctrl = "z", None

    def reflected(self, after: str):
        """The last control reflected about the current point when the last command was one of `after`, else
        the current point (S after C or S, T after Q or T)."""
        cur, ctrl = self.cur, self.last_ctrl
        return (2 * cur[0] - ctrl[0], 2 * cur[1] - ctrl[1]) if self.last_cmd in after and ctrl else cur


def _draw(pb: PathBuilder, pen: _Pen, cmd: str, args: list[float]) -> str:
    """Draw one command with its arguments from the pen; returns the command that further bare numbers repeat."""
    lo = cmd.lower()
    ox, oy = pen.cur if cmd.islower() else (0.0, 0.0)
    cur = pen.cur
    if lo == "m":
        pen.cur = pen.start = (args[0] + ox, args[1] + oy)
        pb.move(pen.cur)
        pen.last_cmd, pen.last_ctrl = lo, None
        return "l" if cmd.islower() else "L"                     # further pairs are line-tos
    _ensure(pb, cur)
    if lo in "lhv":
        if lo == "l":
            p = (args[0] + ox, args[1] + oy)
        else:
            p = (args[0] + ox, cur[1]) if lo == "h" else (cur[0], args[0] + oy)
        pb.line(p)
        ctrl = None
    elif lo in "cs":
        c1 = (args[0] + ox, args[1] + oy) if lo == "c" else pen.reflected("cs")
        rest = args[2:] if lo == "c" else args
        ctrl, p = (rest[0] + ox, rest[1] + oy), (rest[2] + ox, rest[3] + oy)
        pb.cubic(c1, ctrl, p)
    elif lo in "qt":
        ctrl = (args[0] + ox, args[1] + oy) if lo == "q" else pen.reflected("qt")
        p = (args[2] + ox, args[3] + oy) if lo == "q" else (args[0] + ox, args[1] + oy)
        pb.cubic((cur[0] + 2 / 3 * (ctrl[0] - cur[0]), cur[1] + 2 / 3 * (ctrl[1] - cur[1])),
                 (p[0] + 2 / 3 * (ctrl[0] - p[0]), p[1] + 2 / 3 * (ctrl[1] - p[1])), p)
    else:
        p, ctrl = (args[5] + ox, args[6] + oy), None
        for c1, c2, e in arc_to_cubics(cur, args[0], args[1], args[2], bool(args[3]), bool(args[4]), p):
            pb.cubic(c1, c2, e)
    pen.cur, pen.last_ctrl, pen.last_cmd = p, ctrl, lo
    return cmd


def _ensure(pb: PathBuilder, cur):
    """A drawing command after Z (or at the very start) starts a new subpath at the current point."""
    if pb.cur is None:
        pb.cur = [cur]


def arc_to_cubics(p0, rx, ry, phi_deg, large, sweep, p1):
    """Elliptical arc (SVG endpoint parameterization, implementation notes F.6) -> cubics, <= 90 deg each.

    Out-of-range radii follow F.6.6: a zero radius gives a straight line, radii too small to reach p1 are
    scaled up until they do. Radii so large that the arc cannot be told from its chord (more than 1e6 times
    the half-chord) give the chord for a small arc, since the centre would be too far away to compute it in
    float64; a large arc around such an ellipse would leave any canvas and is refused.
    """
    if p0 == p1:
        return []
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0:
        return _chord(p0, p1)
    phi = math.radians(phi_deg % 360.0)
    cs, sn = math.cos(phi), math.sin(phi)
    ellipse = _arc_ellipse(p0, p1, rx, ry, cs, sn, large, sweep)
    if ellipse is None:
        return _chord(p0, p1)
    cx, cy, rx, ry, ux, uy, coef = ellipse
    vx, vy = ux - coef * uy, uy + coef * ux          # ((x1p - cxp) / rx, (y1p - cyp) / ry)
    th1 = _angle(1, 0, vx, vy)
    dth = _angle(vx, vy, -ux - coef * uy, -uy + coef * ux)
    if not sweep and dth > 0:
        dth -= 2 * math.pi
    elif sweep and dth < 0:
        dth += 2 * math.pi
    return _arc_pieces(p0, p1, (cx, cy, rx, ry, cs, sn), th1, dth)


def _chord(p0, p1):
    """The straight line p0 -> p1 as one cubic."""
    a = p0
    return [((a[0] + (p1[0] - a[0]) / 3, a[1] + (p1[1] - a[1]) / 3),
             (a[0] + (p1[0] - a[0]) * 2 / 3, a[1] + (p1[1] - a[1]) * 2 / 3), p1)]


def _arc_ellipse(p0, p1, rx, ry, cs, sn, large, sweep):
    """The arc's ellipse (F.6.5, radii scaled up as F.6.6): (cx, cy, rx, ry, ux, uy, coef), with (ux, uy) the
    half-chord in radius-normalized coordinates and coef the centre's signed factor; None when the arc is its
    chord. InputError when the ellipse is too large to draw."""
    dx, dy = (p0[0] - p1[0]) / 2, (p0[1] - p1[1]) / 2
    x1p, y1p = cs * dx + sn * dy, -sn * dx + cs * dy
    # Everything below is written in the radius-normalized coordinates (x1p / rx, y1p / ry): squaring the
    # radii themselves overflows for 1e200 and underflows for 1e-200 (both valid path data).
    ux, uy = x1p / rx, y1p / ry
    lam_root = math.hypot(ux, uy)                     # sqrt(Lambda) of F.6.6.2
    if not math.isfinite(lam_root):
        return None                                   # radii ~1e-308: the arc is its own scaled-up half circle
    if lam_root > 1:
        rx, ry = rx * lam_root, ry * lam_root
        ux, uy = x1p / rx, y1p / ry
        lam_root = 1.0
    if lam_root < 1e-6:
        if large:
            raise InputError("The SVG has a large-arc in its path data whose ellipse is more than a million times "
                             "its chord, far outside any canvas; reduce its radii.")
        return None
    lam = lam_root * lam_root
    coef = math.sqrt(max((1.0 - lam) / lam, 0.0)) if lam > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * uy, -coef * ry * ux
    cx = cs * cxp - sn * cyp + (p0[0] + p1[0]) / 2
    cy = sn * cxp + cs * cyp + (p0[1] + p1[1]) / 2
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise InputError("The SVG has an arc in its path data whose ellipse is too large to draw.")
    return cx, cy, rx, ry, ux, uy, coef


def _angle(ux, uy, vx, vy):
    """The signed angle from vector u to vector v, radians."""
    return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)


def _arc_pieces(p0, p1, ellipse, th1, dth):
    """The arc from angle th1 turning dth on ellipse (cx, cy, rx, ry, cos phi, sin phi) as cubics of at most a
    quarter turn each, tangent-matched (handle length 4/3 tan(step / 4)), ending exactly at p1."""
    cx, cy, rx, ry, cs, sn = ellipse
    nseg = max(1, math.ceil(abs(dth) / (math.pi / 2) - 1e-9))
    step = dth / nseg
    k = 4.0 / 3.0 * math.tan(step / 4.0)
    out = []

    def pt(t):
        x, y = rx * math.cos(t), ry * math.sin(t)
        return (cs * x - sn * y + cx, sn * x + cs * y + cy)

    def deriv(t):
        x, y = -rx * math.sin(t), ry * math.cos(t)
        return (cs * x - sn * y, sn * x + cs * y)

    t = th1
    a = p0
    for j in range(nseg):
        t2 = t + step
        b = p1 if j == nseg - 1 else pt(t2)
        da, db = deriv(t), deriv(t2)
        out.append(((a[0] + k * da[0], a[1] + k * da[1]), (b[0] - k * db[0], b[1] - k * db[1]), b))
        a, t = b, t2
    return out
