"""coco-caption's PTBTokenizer (Stanford CoreNLP 3.4.1, Java) reproduced in pure Python, for the avcap task.

Written by hand because no maintained Python package reproduces it token for token; see docs/tasks/avcap.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# ==== PTBTokenizer (Stanford CoreNLP 3.4.1 PTBLexer.flex) as coco-caption runs it ====================================
# ``java ... PTBTokenizer -preserveLines -lowerCase`` over all captions, one per line, then tokenizer.py drops the
# tokens in PUNCTUATIONS. JFlex takes the longest match (trailing context included), the earlier rule on a tie;
# lower-casing happens after the lexer's rewrites, so "(" -> "-LRB-" -> "-lrb-" is NOT in the (upper-case) list.
# Python's \w also takes numeric symbols ("½", "²", "Ⅻ") that Java's isLetter does not: they are taken out.
_NUMERIC = "\u00b2\u00b3\u00b9\u00bc-\u00be\u2070-\u209f\u2150-\u218f\u2460-\u24ff\u2776-\u2793"
_L, _LD = rf"[^\W\d_{_NUMERIC}]", rf"[^\W_{_NUMERIC}]"  # [:letter:], [:letter:]|[:digit:]
_LETTER, _LETDIG = rf"(?:{_L}|[\u00AD\u0300-\u036F])", rf"(?:{_LD}|[\u00AD\u0300-\u036F])"
_APOS, _APOSETC = r"(?:['\u0092\u2019]|&apos;)", r"(?:['\u0092\u2019`\u0091\u2018\u201B]|&apos;)"
_SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
_SPACENL = rf"(?:{_SPACE}|\n)"
_WORD = rf"{_LETTER}{_LETDIG}*(?:[.!?]{_LETTER}{_LETDIG}*)*"
_REDAUX = rf"{_APOS}(?:[msdMSD]|(?i:re|ve|ll))"
_SREDAUX = rf"(?i:n){_APOSETC}(?i:t)"
_ACRO_SPECIAL = r"(?i:canada|sino|korean|eu|japan|non)-(?i:u\.s)|(?i:u\.s\.-)(?:(?i:u\.s\.s\.r)|(?i:u\.k))"
_ACRO = rf"(?:{_ACRO_SPECIAL}|[A-Za-z](?:\.[A-Za-z])*)"
_ACRO2 = rf"(?:{_ACRO_SPECIAL}|[A-Za-z](?:\.[A-Za-z])+)"
_ABBREV1 = (  # months, days, states, companies, ... "etc.": the period stays on the token
    r"(?:(?i:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|mon|tues|tue|wed|thurs|thu|fri|ala|ariz|calif|colo"
    r"|conn|ct|dak|fla|ga|ind|kans|kan|ky|md|mich|minn|mo|mont|neb|nev|okla|penn|tenn|va|vt|wisc|wis|wyo|inc|cos"
    r"|co|corp|ltd|plc|rt|bancorp|bhd|assn|univ|intl|sys|tel|est|ext|sq|jr|sr|bros|ed\.d|ph\.d|blvd|rd|esq|etc|al"
    r"|seq|bldg)|A(?i:z|rk)|D(?i:el)|I(?i:ll)|L(?i:a)|M(?i:ass|iss)|O(?i:re)|P(?i:a)|T(?i:ex)|W(?i:ash)"
    r"|(?i:pp|p)t[ye]s?)\."
)
_ABBREV4 = (  # titles and the like, and any acronym ("Mr", "St", "e.g", "A")
    r"(?:(?i:mrs|mr|ms|drs|dr|profs|prof|sens|sen|reps|rep|attys|atty|lt|col|gen|messrs|govs|gov|adm|rev|maj|sgt"
    r"|cpl|pvt|capt|ste|st|ave|pres|lieut|hon|brig|comdr|cmdr|pfc|spc|supts|supt|det|mt|ft|adj|adv|asst|assoc|ens"
    rf"|insp|mlle|mme|msgr|sfc|vs|alex|wm|jos|cie|a\.k\.a|cf|treas|ph|invt|elec|natl|dept)|M(?i:iss)|(?i:m)[ft]g"
    rf"|{_ACRO})"
)
_ABBREV3 = r"(?i:ca|figs|fig|prop|nos|no|art|bldg|pp|op)\."
_SENT_START = (
    r"(?:A(?i:bout|ccording|dditionally|fter|n|s|t)?|B(?i:ut)|E(?i:arlier)|H(?i:e|er|ere|owever)|I(?i:f|n|t)"
    r"|L(?i:ast)|M(?i:any|ore|r\.|s\.)|N(?i:ow)|O(?i:nce|ne|ther|ur)|S(?i:he|ince|o|ome|uch)"
    r"|T(?i:hat|he|heir|hen|here|hese|hey|his)|W(?i:e|hen|hile|hat)|Y(?i:et|ou))"
)
_SGML = (
    r"<(?:[!?][A-Za-z-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.-]*[ ]*=[ ]*(?:'[^']*'"
    r"|\"[^\"]*\")|[A-Za-z][A-Za-z0-9_:.-]*))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.-]*)[ ]*>"
)
_THING_PART = rf"(?:[dDoOlL]{_APOSETC}{_LD})?{_LD}+"
_THING = rf"{_THING_PART}(?:[-_\u058A\u2010\u2011]{_THING_PART})*"
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:{_ACRO2}\.|[A-Za-z0-9\u00AD]+))+"
_THINGA = r"[A-Z]+(?:(?:[+&]|&(?i:amp);)[A-Z]+)+"
_FILENAME = (
    rf"{_LETDIG}+(?:\.{_LETDIG}+)*\.(?i:bat|bmp|class|cgi|cpp|c|dll|docx|doc|exe|gif|gz|html|htm|h|jar|java|jpeg"
    r"|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|xml|x|zip)"
)
_PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \u00A0])?[0-9]{2,4}[- \u00A0])[0-9]{3,4}[- \u00A0]?"
    r"[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)
_MISC = (
    "[+%&~^|\\\\\u00a6-\u00a9\u00ac\u00ae\u00af\u00b0-\u00ba\u00d7\u00f7\u0387\u05be\u05c0\u05c3\u05c6\u05f3"
    "\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6-\u07f8\u0964\u0965"
    "\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044\u207a-\u207f\u208a-\u208e"
    "\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)
_INSENTP = r"[,;:\u3001]"
_QUOTE_MAP = [("\u0091\u2018\u201B\u2039", "`"), ("\u0092\u2019\u203A", "'"), ("\u0093\u201C\u00AB", "``"),
              ("\u0094\u201D\u00BB", "''")]  # fmt: skip
_FRACTIONS = str.maketrans({"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"})
_CURRENCY = str.maketrans(
    {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
)
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "{": "-LCB-", "}": "-RCB-", "[": "-LSB-", "]": "-RSB-"}
_AMP_RE = re.compile(r"&(?i:amp);")


def _quotes(left: bool) -> Callable[[str], str]:
    def rewrite(tok: str) -> str:  # PTBLexer.latexQuotes
        tok = tok.replace("&apos;", "'").replace("&quot;", '"')
        tok = tok.replace("'", "`" if left else "'").replace('"', "``" if left else "''")
        for chars, repl in _QUOTE_MAP:
            for ch in chars:
                tok = tok.replace(ch, repl)
        return tok

    return rewrite


def _same(t: str) -> str:
    return t


def _soft(t: str) -> str:
    return t.replace("\u00ad", "") or "-"


def _amp(t: str) -> str:
    return _AMP_RE.sub("&", t)


def _nbsp_parens(t: str) -> str:
    return t.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-")


# (main, trailing context, rewrite or None to skip, characters pushed back); PTBLexer.flex's rules in their order.
# "dup" pushes back the final period so that it is read again as its own token.
_RULES: list[tuple[str, str, Any, int | str]] = [
    (r"(?i:c)\+\+|(?i:c|f)#", "", _same, 0),
    (r"(?i:cannot)|'(?i:twas)", "", _same, 3),
    (r"'(?i:tis)|(?i:gonna|gotta|lemme|gimme|wanna)", "", _same, 2),
    (_SGML, "", lambda t: t.replace(" ", "\u00a0"), 0),
    (r"&(?i:md|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", "", lambda t: "--", 0),
    (r"&(?i:amp);", "", _amp, 0),
    (r"&(?i:ht|tl|ur|lr|qc|ql|qr|odq|cdq|#[0-9]+);", "", _same, 0),
    (_WORD, _REDAUX, _soft, 0),
    (r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*", _SREDAUX, _soft, 0),
    (_WORD, "", _soft, 0),
    (rf"{_APOS}(?i:n){_APOS}?|[lLdDjJ]{_APOS}|(?i:dunkin|somethin|ol){_APOS}|{_APOS}(?i:em)", "", _same, 0),
    (rf"[A-HJ-XZn]{_APOSETC}{_L}{{2}}{_L}*|{_L}+[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z]{_L}*", "", _same, 0),
    (rf"{_APOS}(?:[2-9]0(?i:s)|(?i:till|til|cause))|(?i:o){_APOSETC}(?i:o)", "", _same, 0),
    (r"(?i:cont'd)\.?|(?i:'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)", "", _same, 0),
    (rf"(?i:y){_APOS}", _L, _same, 0),
    (r"(?i:https?)://[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]", "", _same, 0),
    (
        r"(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}|(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+"
        r"(?i:com|net|org|edu))(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?",
        "",
        _same,
        0,
    ),
    (
        r"(?:&(?i:lt);|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0{}]*@(?:[^ \t\n\f\r\"<>|(){}.\u00A0]+\.)*"
        r"[^ \t\n\f\r\"<>|(){}.\u00A0]+(?:&(?i:gt);|>)?",
        "",
        _same,
        0,
    ),
    (rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{_LETTER}+", "", _same, 0),
    (rf"{_REDAUX}|{_SREDAUX}", r"[^A-Za-z]", _quotes(False), 0),
    (r"\d{1,2}[-/]\d{1,2}[-/]\d{2,4}", "", _same, 0),
    (r"[-+]?(?:\d*(?:[.:,\u00AD\u066B\u066C]\d+)+|\d+)", "", _soft, 0),
    (r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)", "", _same, 0),
    (r"(?:\d{1,4}[- \u00A0])?\d{1,4}(?:\\?/|\u2044)\d{1,4}", "", lambda t: t.replace(" ", "\u00a0"), 0),
    (r"[\u00BC\u00BD\u00BE\u2153-\u215E]", "", lambda t: t.translate(_FRACTIONS), 0),
    (
        rf"-(?i:rrb|lrb|rcb|lcb|rsb|lsb)-|(?i:c\.d\.s|pro-|anti-)|(?i:s)(?:&|(?i:&amp;))(?i:p-500|ls)"
        rf"|(?i:cap){_APOS}(?i:n)|(?i:c){_APOS}(?i:est)",
        "",
        _amp,
        0,
    ),
    (r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}", "", _same, 0),
    (r"[A-Z]*\$|#", "", _same, 0),
    (
        r"[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]",
        "",
        lambda t: t.translate(_CURRENCY),
        0,
    ),
    (rf"{_ACRO}\.", rf"{_SPACENL}+(?:{_SENT_START}|{_SGML}){_SPACENL}", _same, "acronym"),
    (_ABBREV3, rf"{_SPACENL}?\d", _same, 0),
    (r"(?:(?i:pt)[eyEY]|(?i:co))\.", rf"{_SPACE}(?i:ltd|lim)", _same, 0),
    (_ABBREV1, rf"{_SPACENL}(?:{_SPACENL}|{_SGML}|[^\W\d_])", _same, "sentend"),  # [:uppercase:] checked in code
    (_ABBREV1, r"[\s\S][\s\S]", _same, 0),
    (_ABBREV1, "", _same, "dup"),
    (rf"{_ABBREV4}\.", "", _same, 0),
    (_ABBREV4, _SPACE, _same, 0),
    (_ACRO, _SPACENL, _same, 0),
    (rf"{_APOS}[0-9][0-9]", _SPACENL, _same, 0),
    (_FILENAME, rf"(?:{_SPACENL}|[.?!,])", _same, 0),
    (rf"{_WORD}\.", _INSENTP, _soft, 0),
    (_PHONE, "", _nbsp_parens, 0),
    (r"\"|&(?i:quot);", r"[A-Za-z0-9$]", _quotes(True), 0),
    (r"\"|&(?i:quot);", "", _quotes(False), 0),
    (r"\x7f", "", None, 0),
    (r"<|&(?i:lt);", "", lambda t: "<", 0),
    (r">|&(?i:gt);", "", lambda t: ">", 0),
    (r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]]", r"[^A-Za-z0-9]", _nbsp_parens, 0),
    (
        r"[\^x=~<>]\.\[\^(?i:x)=~<>\]|[-\^x=~<>']_[-\^x=~<>']|\([-\^x=~<>'][_.]?[-\^x=~<>']\)"
        r"|\([\^x=~<>']-[\^x=~<>'`]\)",
        "",
        _nbsp_parens,
        0,
    ),
    (r"[{}\[\]()]", "", lambda t: _BRACKETS[t], 0),
    (r"-+", "", lambda t: "--" if 3 <= len(t) <= 4 else t, 0),
    (r"\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026]", "", lambda t: "...", 0),
    (
        r"@+|#+|_+|\*+|(?:\\\*){1,3}|[?!]+|[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002=/]",
        "",
        _same,
        0,
    ),
    (_INSENTP, "", _same, 0),
    (rf"{_HTHING}\.", _INSENTP, _soft, 0),
    (_HTHING, "", _soft, 0),
    (rf"{_THING}\.", _INSENTP, _same, 0),
    (_THING, "", _same, 0),
    (rf"{_THINGA}\.", _INSENTP, _amp, 0),
    (_THINGA, "", _amp, 0),
    (r"'", r"[A-Za-z][^ \t\n\r\u00A0]", _quotes(True), 0),
    (
        rf"{_REDAUX}|{_SREDAUX}|''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091-\u0094\u201E\u201F\u2039\u203A"
        rf"\u00AB\u00BB]{{1,2}}|{_APOS}",
        "",
        _quotes(False),
        0,
    ),
    (r"<<|>>", "", _same, 0),
    (_MISC, "", _same, 0),
    (r"\x00|[ \t\u00A0\u2000-\u200A\u3000]+|[\u200B\u200E\u200F\uFEFF]|&(?i:nbsp);", "", None, 0),
]
_COMPILED = [(re.compile(f"({main})({trail})"), rewrite, back) for main, trail, rewrite, back in _RULES]
# coco-caption tokenizer.py's PUNCTUATIONS, tested against the lower-cased tokens.
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
                          "--", "...", ";"])  # fmt: skip
# Line breaks: tokenizer.py turns "\n" into a space; the lexer's other line breaks would shift every later caption
# by a line in coco-caption (a bug we do not reproduce), so they become spaces too.
_NEWLINES_RE = re.compile(r"[\r\n\u2028\u2029\u000B\u000C\u0085]")
# Fast path: a space-separated chunk of ASCII letters with at most one sentence punctuation mark after them is its
# own word, whatever surrounds it, unless the word may be an abbreviation or acronym before a period ("Mr.", "d.")
# or is an assimilation ("cannot" -> "can not"). Chunks repeat, so their verdicts are cached.
_CHUNK_RE = re.compile(r"([A-Za-z]+)([,.;?!]?)")
_PLAIN_RE = re.compile(r"([A-Za-z]+)([,.;?!]?)(?= |\n)")
# Two more shapes the longest match settles the same way wherever they stand: a possessive ("man's": WORD before
# REDAUX, then "'s") and a hyphenated word ("short-sleeved": HTHING), each followed by a space or one mark and a
# space (no e-mail, URL or "x-y.," rule can then reach further).
_POSSESSIVE_RE = re.compile(r"([A-Za-z]{2,})('s)([,.;?!]?)(?= |\n)")
_HYPHENATED_RE = re.compile(r"([A-Za-z]+(?:-[A-Za-z]+)+)([,.;?!]?)(?= |\n)")
_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])
_ABBREVIATION_RE = re.compile(rf"{_ABBREV1}|{_ABBREV4}\.|{_ABBREV3}")
_CHUNK_CACHE: dict[str, str] = {}  # chunk -> its lower-cased word, or "" if the chunk needs the lexer


@lru_cache(maxsize=1 << 14)
def _is_abbreviation(word: str) -> bool:
    return _ABBREVIATION_RE.fullmatch(word + ".") is not None


def _is_special(word: str, punct: str) -> bool:
    return word.lower() in _ASSIMILATIONS or (punct == "." and _is_abbreviation(word))


def _longest(text: str, pos: int) -> tuple[str | None, int]:
    """One JFlex step at ``pos``: (token or None, characters consumed)."""
    best, best_len = None, -1
    for rx, rewrite, back in _COMPILED:
        m = rx.match(text, pos)
        if m is None or m.end() - pos <= best_len:
            continue
        if back == "sentend":  # SENTEND = {SPACENL}({SPACENL}|[:uppercase:]|{SGML})
            after = m.group(2)[1:]
            if after.isalpha() and not after.isupper():
                continue
        best, best_len = (m.group(1), rewrite, back), m.end() - pos
    if best is None:  # untokenizable character: deleted (the lexer's default "firstDelete")
        return None, 1
    matched, rewrite, back = best
    if back == "acronym":  # "I." before "The": "I" then "."; longer acronyms keep the period and repeat it
        return (matched[:1], 1) if len(matched) == 2 else (matched, len(matched) - 1)
    if back in ("dup", "sentend"):
        return matched, len(matched) - 1
    if rewrite is None:
        return None, len(matched)
    return rewrite(matched[: len(matched) - back]), len(matched) - back  # type: ignore[operator]


def ptb_tokens(caption: str) -> list[str]:
    """PTBTokenizer's lower-cased tokens of one caption line, before coco-caption drops punctuation.

    The line after the caption is taken to begin with "A" (69% of VALOR-32K captions start with a word of the
    lexer's sentence-start list); only the acronym ("letter d." -> "d") and "No. 5" rules look that far.
    """
    end = len(caption)
    text = _NEWLINES_RE.sub(" ", caption) + "\nA "
    tokens: list[str] = []
    pos = 0
    while pos < end:
        if text[pos] == " ":
            pos += 1
            continue
        m = _PLAIN_RE.match(text, pos)
        if m is not None and not _is_special(m.group(1), m.group(2)):
            tokens.extend(m.groups() if m.group(2) else (m.group(1),))
            pos = m.end()
            continue
        m = _POSSESSIVE_RE.match(text, pos) or _HYPHENATED_RE.match(text, pos)
        if m is not None and m.group(1).lower() not in _ASSIMILATIONS:
            tokens.extend(g for g in m.groups() if g)
            pos = m.end()
            continue
        token, consumed = _longest(text, pos)
        if token is not None:
            tokens.append(token)
        pos += consumed
    return [t.lower() for t in tokens]


def _chunk_word(chunk: str) -> str:
    m = _CHUNK_RE.fullmatch(chunk)
    return "" if m is None or _is_special(m.group(1), m.group(2)) else m.group(1).lower()


def tokenize_caption(caption: str) -> str:
    """The caption as coco-caption's PTBTokenizer.tokenize returns it: tokens joined by single spaces."""
    words = []
    for chunk in caption.split(" "):
        if not chunk:
            continue
        word = _CHUNK_CACHE.get(chunk)
        if word is None:
            word = _chunk_word(chunk)
            if len(_CHUNK_CACHE) < 1 << 17:
                _CHUNK_CACHE[chunk] = word
        if not word:
            return " ".join(t for t in ptb_tokens(caption) if t not in PUNCTUATIONS)
        words.append(word)
    return " ".join(words)
