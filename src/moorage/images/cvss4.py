"""CVSS v4.0 severity, from the specification's MacroVector table.

The score is the MacroVector's score from FIRST's table (EQ1..EQ6). The
specification refines it within the MacroVector by up to a few tenths using the
distance to the next-lower MacroVector; that refinement isn't applied here, so a
score can sit up to a few tenths above the official calculator's, and near a band
edge read one band higher (the cautious direction for a gate), never lower.
"""

from __future__ import annotations

__all__ = ["macrovector", "score_v4"]

# FIRST CVSS v4.0 MacroVector scores (eq1 eq2 eq3 eq4 eq5 eq6 -> base score).
_TABLE_TEXT = """
000000:10 010000:9.9 000001:9.9 001000:9.9 000010:9.8 000100:9.8 100000:9.7 010001:9.7 011000:9.6
010010:9.6 010100:9.6 001010:9.6 001001:9.6 000011:9.6 000101:9.5 000020:9.5 100001:9.4 000110:9.4
110000:9.4 011001:9.4 001100:9.4 000200:9.4 010020:9.3 101000:9.3 000021:9.3 001101:9.3 100100:9.3
010200:9.3 100010:9.3 011100:9.2 010011:9.2 002001:9.2 011010:9.2 010101:9.2 000201:9.1 000120:9.1
001011:9.1 001020:9.1 001110:9.1 010110:9.1 000210:9.1 000111:9.1 100020:9 001200:9 010021:9
012001:9 011020:9 110001:9 011011:9 011200:9 001021:9 110100:9 111000:9 010111:9 010120:9 101001:9
101010:9 100101:8.9 001111:8.9 011101:8.8 001120:8.8 000121:8.8 110010:8.7 002101:8.7 100110:8.6
010210:8.6 100011:8.5 000220:8.5 010201:8.5 011110:8.5 002011:8.5 100200:8.4 000211:8.3 102001:8.3
001201:8.3 101100:8.2 001210:8.1 012011:8 100021:7.9 002021:7.9 101101:7.8 101011:7.7 110020:7.7
100120:7.6 110101:7.5 011021:7.5 011111:7.5 111010:7.5 101020:7.4 010220:7.3 111100:7.3 111001:7.2
010121:7.2 002201:7.2 110200:7.1 110011:7.1 011201:7 100201:6.9 010211:6.8 012101:6.8 100111:6.7
110110:6.6 011120:6.5 001211:6.4 011210:6.4 112001:6.4 101110:6.3 000221:6.3 001121:6.3 002111:6.2
100210:6.2 001220:6.2 102101:6.1 101200:6 102011:5.9 111011:5.8 110021:5.7 110201:5.7 111020:5.6
101021:5.6 110210:5.6 011211:5.5 012111:5.5 100211:5.4 111101:5.3 010221:5.2 001221:5.2 100220:5.2
011220:5.1 110111:5.1 101201:5 012021:4.9 002121:4.8 111200:4.7 002211:4.6 101210:4.6 101120:4.5
112101:4.4 111110:4.4 101111:4.3 011121:4.2 100121:4.1 112011:4 110120:4 012201:3.9 102201:3.8
102021:3.7 111201:3.6 111021:3.5 110220:3.4 100221:3.2 110211:3.1 112021:3 110121:2.9 102111:2.8
101121:2.7 011221:2.6 111120:2.5 012121:2.4 012211:2.3 111111:2.2 101211:2.1 101220:1.9 111210:1.8
002221:1.7 112111:1.6 102121:1.5 112201:1.4 111211:1.3 110221:1.2 101221:1.1 102211:1 111121:0.9
111220:0.8 012221:0.6 112121:0.5 112211:0.4 111221:0.3 102221:0.2 112221:0.1
"""
_TABLE = {k: float(v) for k, v in (item.split(":") for item in _TABLE_TEXT.split())}
_BASE = ("AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA")


def macrovector(vector: str) -> str:
    if not vector.startswith("CVSS:4.0/"):
        raise ValueError(f"{vector!r} is not a CVSS v4.0 vector")
    m = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    missing = [k for k in _BASE if k not in m]
    if missing:
        raise ValueError(f"{vector!r} lacks the base metrics {', '.join(missing)}")

    def g(k: str, default: str = "X") -> str:
        # Environmental modified metrics (M*) override the base ones when set.
        mod = m.get("M" + k, "X")
        return mod if mod != "X" else m.get(k, default)

    av, pr, ui = g("AV"), g("PR"), g("UI")
    if av == "N" and pr == "N" and ui == "N":
        eq1 = 0
    elif (av == "N" or pr == "N" or ui == "N") and av != "P":
        eq1 = 1
    else:
        eq1 = 2
    eq2 = 0 if g("AC") == "L" and g("AT") == "N" else 1
    vc, vi, va = g("VC"), g("VI"), g("VA")
    if vc == "H" and vi == "H":
        eq3 = 0
    elif "H" in (vc, vi, va):
        eq3 = 1
    else:
        eq3 = 2
    msi, msa = m.get("MSI", "X"), m.get("MSA", "X")
    if msi == "S" or msa == "S":
        eq4 = 0
    elif "H" in (g("SC"), g("SI"), g("SA")):
        eq4 = 1
    else:
        eq4 = 2
    e = m.get("E", "X")
    eq5 = {"X": 0, "A": 0, "P": 1, "U": 2}.get(e, 0)
    cr, ir, ar = (m.get(k, "X").replace("X", "H") for k in ("CR", "IR", "AR"))
    eq6 = 0 if (cr == "H" and vc == "H") or (ir == "H" and vi == "H") or (ar == "H" and va == "H") else 1
    return f"{eq1}{eq2}{eq3}{eq4}{eq5}{eq6}"


def score_v4(vector: str) -> float:
    m = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    if all(m.get(k) == "N" for k in ("VC", "VI", "VA", "SC", "SI", "SA")):
        return 0.0
    key = macrovector(vector)
    if key not in _TABLE:
        raise ValueError(f"{vector!r} maps to MacroVector {key}, which the table doesn't hold")
    return _TABLE[key]
