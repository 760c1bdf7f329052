"""The result row's text layout: a cut always ends in "…", and nothing is drawn after it."""

from __future__ import annotations

from backup_operator.ui.delegates import fit_segments, segments


def _measure(piece: str, matched: bool) -> int:
    return 10 * len(piece)


def _elide(piece: str, matched: bool, room: int) -> str:
    if 10 * len(piece) <= room:
        return piece
    keep = room // 10 - 1
    return piece[:keep] + "…" if keep > 0 else ("…" if room >= 10 else "")


def _drawn(text, spans, limit):
    pieces, end = fit_segments(text, spans, 0, limit, _measure, _elide)
    return "".join(p for p, *_ in pieces), pieces, end


def test_fits_whole():
    drawn, pieces, end = _drawn("Amelia Hart", [(0, 6)], 500)
    assert drawn == "Amelia Hart" and end == 110
    assert [(p, m) for p, m, *_ in pieces] == [("Amelia", True), (" Hart", False)]


def test_no_stray_characters_after_an_elided_subtitle():
    # "Campus" is cut; the highlighted "1" after it must not be drawn ("Campus1" was seen).
    text = "Lakeshore Main Campus1"
    drawn, pieces, end = _drawn(text, [(21, 22)], 150)
    assert drawn.endswith("…") and "1" not in drawn and end == 150


def test_a_cut_where_not_even_a_letter_fits_ends_the_piece_before():
    # "— on c" fits, "all" has no room for "a…": the row shows "— on ca…"-like text ending in "…".
    text = "— on call"
    drawn, pieces, end = _drawn(text, [(5, 6)], 65)
    assert drawn.endswith("…"), drawn
    assert len(drawn) * 10 <= 65


def test_segments_merge_overlaps():
    assert segments("abcdef", [(0, 2), (1, 3), (5, 6)]) == [("abc", True), ("de", False), ("f", True)]
