"""A COCO results JSON read straight into typed arrays, compiled with numba: the common case, fast.

A results file is half a million small objects; parsing it into Python dicts
and lists (orjson) and then into arrays costs more than evaluating it. This
scanner reads the bytes once and fills the arrays. It accepts exactly the
plain form every writer produces::

    [{"image_id": 1, "category_id": 3, "bbox": [x, y, w, h], "score": 0.9}, ...]

(any key order, any JSON whitespace, integer ids) and gives up (returns
None) on anything else: another key, a string id, an escape, NaN, a missing
field. The caller then takes the general path (orjson, which names the
problem). Numbers are exact: a decimal of at most 15 significant digits and a
power of ten within 10^22 is one correctly rounded product or quotient of two
exact doubles (Clinger's fast path), equal to Python's ``float``; any other
number is handed back and parsed with numpy's string-to-float cast, which
rounds the same way.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from eval.coco_kernels import load_numba_without_scipy

load_numba_without_scipy()  # before the first call of a compiled function (see there)

_POW10 = np.array([10.0 ** k for k in range(23)])  # exact doubles: 10^0 .. 10^22
_KEYS = (np.frombuffer(b"image_id", np.uint8), np.frombuffer(b"category_id", np.uint8),
         np.frombuffer(b"bbox", np.uint8), np.frombuffer(b"score", np.uint8))
_K0, _K1, _K2, _K3 = _KEYS


@njit(cache=True, nogil=True)
def _ws(b, i):  # pragma: no cover - compiled
    while i < len(b) and (b[i] == 32 or b[i] == 10 or b[i] == 13 or b[i] == 9):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _number(b, i):  # pragma: no cover - compiled
    """JSON number at ``b[i]``: (value, end, status); status 0 exact, 1 parse it elsewhere, 2 not a number."""
    n = len(b)
    neg = i < n and b[i] == 45
    if neg:
        i += 1
    if i >= n or b[i] < 48 or b[i] > 57:
        return 0.0, i, 2
    mant, digits, exp10, long, integer = 0, 0, 0, False, True
    while i < n and 48 <= b[i] <= 57:
        if mant == 0 and b[i] == 48:
            pass  # a leading zero
        elif digits < 18:
            mant, digits = mant * 10 + (b[i] - 48), digits + 1
        else:
            long, exp10 = True, exp10 + 1
        i += 1
    if i < n and b[i] == 46:  # fraction
        i, integer = i + 1, False
        if i >= n or b[i] < 48 or b[i] > 57:
            return 0.0, i, 2
        while i < n and 48 <= b[i] <= 57:
            if mant == 0 and b[i] == 48:
                exp10 -= 1
            elif digits < 18:
                mant, digits, exp10 = mant * 10 + (b[i] - 48), digits + 1, exp10 - 1
            else:
                long = True
            i += 1
    if i < n and (b[i] == 101 or b[i] == 69):  # exponent
        i, integer = i + 1, False
        eneg = i < n and b[i] == 45
        if i < n and (b[i] == 45 or b[i] == 43):
            i += 1
        if i >= n or b[i] < 48 or b[i] > 57:
            return 0.0, i, 2
        e = 0
        while i < n and 48 <= b[i] <= 57:
            e = min(e * 10 + (b[i] - 48), 100000)
            i += 1
        exp10 += -e if eneg else e
    if mant == 0 and not long:  # "-0" is the integer 0 to a JSON reader, "-0.0" the float -0.0
        return -0.0 if neg and not integer else 0.0, i, 0
    if long or mant > 9007199254740992 or exp10 > 22 or exp10 < -22:
        return 0.0, i, 1
    value = mant * _POW10[exp10] if exp10 >= 0 else mant / _POW10[-exp10]
    return -value if neg else value, i, 0


@njit(cache=True, nogil=True)
def _key(b, i):  # pragma: no cover - compiled
    """The known key starting at the quote ``b[i]``: (index 0..3 or -1, position after the closing quote)."""
    j = i + 1
    while j < len(b) and b[j] != 34:
        if b[j] == 92:  # an escape: not the plain form
            return -1, j
        j += 1
    length = j - i - 1
    for k, key in enumerate((_K0, _K1, _K2, _K3)):
        if length == len(key):
            same = True
            for c in range(length):
                if b[i + 1 + c] != key[c]:
                    same = False
                    break
            if same:
                return k, j + 1
    return -1, j + 1


@njit(cache=True, nogil=True)
def _integer(b, i):  # pragma: no cover - compiled
    """A JSON integer of at most 18 digits at ``b[i]``: (value, end, ok)."""
    neg = i < len(b) and b[i] == 45
    if neg:
        i += 1
    v, digits = 0, 0
    while i < len(b) and 48 <= b[i] <= 57:
        v, digits, i = v * 10 + (b[i] - 48), digits + 1, i + 1
    ok = 0 < digits <= 18 and not (i < len(b) and (b[i] == 46 or b[i] == 101 or b[i] == 69))
    return -v if neg else v, i, ok


@njit(cache=True, nogil=True)
def scan(b, ids, values, hard):  # pragma: no cover - compiled
    """Fill ``ids`` (n, 2) image / category, ``values`` (n, 5) x, y, w, h, score; -1 if not the plain form.

    ``hard`` (5n, 3) receives (row * 5 + column, start, end) of the numbers
    left to a careful parse. Returns (rows, hard numbers).
    """
    i, row, nh = _ws(b, 0), 0, 0
    if i >= len(b) or b[i] != 91:
        return -1, 0
    i = _ws(b, i + 1)
    if i < len(b) and b[i] == 93:
        return (0, 0) if _ws(b, i + 1) == len(b) else (-1, 0)
    while True:
        if i >= len(b) or b[i] != 123 or row >= len(ids):
            return -1, 0
        seen = 0
        i = _ws(b, i + 1)
        while True:
            if i >= len(b) or b[i] != 34:
                return -1, 0
            k, i = _key(b, i)
            if k < 0 or seen & (1 << k):
                return -1, 0
            seen |= 1 << k
            i = _ws(b, i)
            if i >= len(b) or b[i] != 58:
                return -1, 0
            i = _ws(b, i + 1)
            if k < 2:
                v, i, ok = _integer(b, i)
                if not ok:
                    return -1, 0
                ids[row, k] = v
                i = _ws(b, i)
            else:
                cols = 4 if k == 2 else 1
                if k == 2:
                    if i >= len(b) or b[i] != 91:
                        return -1, 0
                    i = _ws(b, i + 1)
                for c in range(cols):
                    col = c if k == 2 else 4
                    x, end, status = _number(b, i)
                    if status == 2:
                        return -1, 0
                    if status == 1:
                        hard[nh, 0], hard[nh, 1], hard[nh, 2] = row * 5 + col, i, end
                        nh += 1
                    values[row, col] = x
                    i = _ws(b, end)
                    if k == 2:
                        want = 44 if c < 3 else 93
                        if i >= len(b) or b[i] != want:
                            return -1, 0
                        i = _ws(b, i + 1)
            if i < len(b) and b[i] == 44:
                i = _ws(b, i + 1)
            elif i < len(b) and b[i] == 125:
                break
            else:
                return -1, 0
        if seen != 15:
            return -1, 0
        row += 1
        i = _ws(b, i + 1)
        if i < len(b) and b[i] == 44:
            i = _ws(b, i + 1)
        elif i < len(b) and b[i] == 93:
            return (row, nh) if _ws(b, i + 1) == len(b) else (-1, 0)
        else:
            return -1, 0


def read_plain_results(data: bytes):
    """``(image ids (n,) int64, category ids (n,) int64, xywh (n, 4) float64, scores (n,) float64)`` or None.

    None when the file is not in the plain form (see the module docstring).
    This scanner compiled by numba; ``eval.coco_engine.read_plain_results``
    picks the C one where it is built.
    """
    from eval.coco_engine import read_plain_results as read

    return read(data, "numba")
