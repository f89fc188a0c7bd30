"""Spam signs in what the mail shows: HTML tricks, pictures for text, disguised words, link
tricks and the wording families bulk mail has long used.

Wording is matched as families (money, urgency, removal footers, pharmacy...) rather than a
list of phrases: a family fires once however many of its phrases appear, and again, as its
own sign, when three or more different ones do, so no single word decides.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from agents.gmail.message import ParsedEmail
from agents.gmail.rules_headers import FREEMAIL, Signs, base_domain

__all__ = ["FAMILIES", "content_signs"]

_SHORTENERS = {"bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "cutt.ly"}
# link text that is itself an address (as phishing shows it), not a brand name in a sentence:
# newsletters' "News.com" opening a click-tracker is normal, "https://paypal.com" opening
# another host is not
_ADDRESS_TEXT = re.compile(r"^\s*(?:https?://|www\.)([a-z0-9-]+(?:\.[a-z0-9-]+)+)\S*\s*$", re.I)
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "!": "i",
                       "$": "s", "|": "l", "7": "t"})  # fmt: skip
_BAIT = ("viagra", "cialis", "casino", "mortgage", "pharmacy", "porn", "credit", "money",
         "free", "cash", "loan", "offer", "xanax", "valium", "sex")  # fmt: skip
_MIXED_WORD = re.compile(r"\b[a-z]*[0-9@!$|][a-z0-9@!$|]*\b", re.IGNORECASE)
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){3,}[a-z]\b", re.IGNORECASE)
_CLICK = re.compile(r"\bclick\b|\bhere\b|\bthis link\b", re.IGNORECASE)
_REMOVE_LINK = re.compile(r"remove|unsub|opt-?out", re.IGNORECASE)
_WORDS = re.compile(r"[a-z']+")
_READER = frozenset({"you", "your", "you're", "you'll", "yours", "yourself"})
_SUBJECT_PITCH = re.compile(
    r"\b(free|save|savings|offer|money|cash|win|winner|deal|cheap|lowest|best|approved|"
    r"guaranteed?|amazing|opportunity|income|discount|bonus|lose|earn)\b|\$",
    re.IGNORECASE,
)


def _family(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w$])(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


FAMILIES: dict[str, re.Pattern[str]] = {
    "removal": _family(
        r"to be removed",
        r"remove (?:me|yourself|your (?:e-?mail|address|name))",
        r"(?:reply|respond) with (?:the word )?[\"']?remove",
        r"remove in the subject",
        r"opt[- ]?out",
        r"(?:this|the) (?:e-?mail|message|mailing) is not (?:spam|unsolicited)",
        r"you (?:are receiving|received|have received) this (?:e-?mail|message|mailing)",
        r"one[- ]time (?:e-?mail|mailing|message)",
        r"in compliance with",
        r"s\.? ?1618",
        r"never (?:be )?contact(?:ed)? (?:you )?again",
        r"removal instructions",
        r"to unsubscribe",
        r"no longer wish to receive",
        r"(?:e-?mail|address) was obtained",
    ),
    "money": _family(
        r"\$\s?\d[\d,]*(?:\.\d\d)?",
        r"\d+ (?:million|thousand) dollars",
        r"make money",
        r"extra (?:cash|income)",
        r"financial freedom",
        r"earn (?:up to|\$|money|extra)",
        r"per (?:week|month) (?:from home|guaranteed)?",
        r"no investment",
        r"cash",
        r"double your",
        r"wealth",
        r"profits?",
        r"income",
    ),
    "urgency": _family(
        r"act now",
        r"limited time",
        r"(?:don't|do not) (?:delay|wait|miss)",
        r"order (?:now|today)",
        r"call (?:now|today|toll[- ]free)",
        r"offer (?:expires|ends)",
        r"hurry",
        r"while (?:supplies|stocks) last",
        r"last chance",
        r"immediately",
        r"right now",
        r"before it'?s too late",
        r"expires?",
    ),
    "offer": _family(
        r"100% (?:free|guaranteed|satisfied)",
        r"risk[- ]free",
        r"no (?:cost|obligation|fees?)",
        r"satisfaction guaranteed",
        r"money[- ]back",
        r"special (?:offer|promotion)",
        r"(?:lowest|best|unbeatable) prices?",
        r"save (?:up to|\d+%|big)",
        r"discount",
        r"free (?:gift|trial|quote|shipping|consultation|information|access)",
        r"bonus",
        r"amazing",
        r"incredible",
        r"guarantee[ds]?",
    ),
    "pitch": _family(
        r"click (?:here|below|the link)",
        r"dear (?:friend|sir|madam|valued)",
        r"buy now",
        r"congratulations",
        r"you (?:have been|were|are) (?:selected|chosen|approved)",
        r"as seen on",
        r"visit our (?:web ?)?site",
        r"order form",
        r"this is not a scam",
        r"(?:fill out|complete) the form",
        r"valued (?:customer|member)",
        r"toll[- ]free",
    ),
    "pharmacy": _family(
        r"viagra",
        r"cialis",
        r"pharmacy",
        r"(?:no|without a?) prescription",
        r"weight loss",
        r"lose (?:weight|\d+ (?:lbs|pounds))",
        r"herbal",
        r"enlarge(?:ment)?",
        r"penis",
        r"hair loss",
        r"anti-?aging",
        r"hgh",
        r"diet pills?",
        r"fat burn",
    ),
    "finance": _family(
        r"mortgage",
        r"refinanc\w*",
        r"debt",
        r"credit (?:card|report|rating|history)",
        r"loans?",
        r"interest rates?",
        r"low rates?",
        r"pre-?approved",
        r"consolidat\w*",
        r"insurance quotes?",
        r"stock (?:pick|alert|tip)s?",
    ),
    "business": _family(
        r"work (?:from|at) home",
        r"home[- ]based business",
        r"be your own boss",
        r"business opportunity",
        r"multi[- ]?level",
        r"mlm",
        r"network marketing",
        r"residual income",
        r"join (?:now|today|free)",
        r"marketing (?:list|program)",
        r"bulk (?:e-?mail|mail)",
        r"million (?:e-?mail )?addresses",
        r"targeted (?:e-?mail|list)",
    ),
    "fortune": _family(
        r"beneficiary",
        r"next of kin",
        r"bank account",
        r"wire transfer",
        r"western union",
        r"confidential",
        r"nigeria\w*",
        r"lottery",
        r"you(?: have|'ve) won",
        r"winner",
        r"claim (?:your )?(?:prize|reward|funds)",
        r"inheritance",
        r"(?:us|u\.s\.)\$",
        r"barrister",
        r"foreign (?:partner|account)",
        r"gift card",
        r"bitcoin",
    ),
    "phishing": _family(
        r"verify your (?:account|identity|information)",
        r"confirm your (?:password|account|identity|details)",
        r"account (?:will be |has been )?(?:suspended|closed|locked|limited)",
        r"update your (?:billing|payment|account)",
        r"unusual (?:sign-?in|activity)",
        r"login details",
        r"security (?:alert|notice)",
    ),
    "adult": _family(
        r"xxx",
        r"adults? only",
        r"porn\w*",
        r"hot (?:girls|babes|teens)",
        r"nude",
        r"sexy?",
        r"live (?:webcam|cams?)",
        r"barely legal",
        r"erotic",
    ),
}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(re.fullmatch(r"\d+", host))  # a decimal-encoded address: http://3232235777/
    return True


def _html(mail: ParsedEmail, out: Signs) -> None:
    s = mail.structure
    if s.html_only:
        out["html_only"] = "HTML only, no plain-text part"
    if s.hidden_chars >= 20:
        out["hidden_text"] = f"{s.hidden_chars} characters of invisible text"
    if s.tiny_font_chars >= 30:
        out["tiny_font"] = f"{s.tiny_font_chars} characters in a tiny font"
    if s.images and len(mail.text) < 300:
        out["image_mostly"] = f"{s.images} images and almost no text"
    elif s.images >= 4:
        out["many_images"] = f"{s.images} images"


def _disguise(mail: ParsedEmail, out: Signs) -> None:
    text = f"{mail.subject}\n{mail.text[:20_000]}"
    if _ZERO_WIDTH.search(text):
        out["zero_width"] = "invisible zero-width characters inside the text"
    folded = unicodedata.normalize("NFKC", text)
    for word in _MIXED_WORD.findall(folded):
        plain = word.lower().translate(_LEET)
        if plain in _BAIT and plain != word.lower():
            out["obfuscated_word"] = f"disguised word {word!r}"
            break
    for run in _SPACED.findall(folded):
        joined = re.sub(r"[ .\-_*]", "", run).lower()
        if any(bait in joined for bait in _BAIT):
            out["spaced_word"] = f"word spelt apart {run!r}"
            break


def _links(mail: ParsedEmail, out: Signs) -> None:
    domains: set[str] = set()
    for link in mail.links[:200]:
        try:
            parts = urlsplit(link.href.strip())
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            continue
        if not host:
            continue
        domains.add(base_domain(host))
        if _is_ip(host):
            out["link_ip_host"] = "link to a bare IP address"
        if "@" in parts.netloc:
            # the part before '@' may be a real user name and password: named, never shown
            out["link_userinfo"] = f"link hides its host {host} behind a user name and '@'"
        if host.startswith("xn--") or ".xn--" in host:
            out["link_punycode"] = f"link to a look-alike (punycode) host {host}"
        if port not in (None, 80, 443):
            out["link_odd_port"] = f"link to port {port}"
        if "%" in parts.netloc:
            out["link_escaped_host"] = "link host written with %-escapes"
        if host in _SHORTENERS:
            out["link_shortener"] = "link through a URL shortener"
        shown = _ADDRESS_TEXT.match(link.text)
        if shown and base_domain(shown.group(1)) != base_domain(host):
            out["link_text_mismatch"] = f"link text shows {shown.group(1)} but opens {host}"
        if _CLICK.search(link.text) and len(link.text) < 30:
            out["link_click_here"] = "a 'click here' link"
    if len(domains) >= 6:
        out["link_many_domains"] = f"links to {len(domains)} different domains"
    sender = base_domain(mail.from_domain) if mail.from_domain else ""
    if domains and sender and sender not in domains:
        if sender in FREEMAIL:
            out["freemail_links"] = f"sent from a free mailbox ({sender}) with links elsewhere"
        elif mail.structure.html_parts:
            out["links_elsewhere"] = f"HTML mail from {sender} whose links all go elsewhere"
    if any(link.href.lower().startswith("mailto:") and "remove" in link.href.lower()
           for link in mail.links):  # fmt: skip
        out["mailto_remove"] = "a mailto link asking for 'remove'"
    elif any(_REMOVE_LINK.search(link.href) for link in mail.links):
        out["link_remove"] = "a link to be taken off a list"


def _wording(mail: ParsedEmail, out: Signs) -> None:
    haystack = f"{mail.subject}\n{mail.text[:20_000]}"
    families = 0
    for name, pattern in FAMILIES.items():
        found = {m.group(0).lower() for m in pattern.finditer(haystack)}
        if not found:
            continue
        families += 1
        sample = ", ".join(sorted(found)[:3])
        out[f"words_{name}"] = f"{name} wording ({sample})"
        if len(found) >= 3:
            out[f"words_{name}_many"] = f"much {name} wording ({len(found)} phrases)"
    if families >= 4:
        out["words_many_families"] = f"wording of {families} spam families"
    letters = [c for c in mail.text[:5_000] if c.isalpha()]
    if len(letters) >= 200 and sum(c.isupper() for c in letters) / len(letters) > 0.5:
        out["body_caps"] = "body mostly in capitals"
    if mail.text.count("!") >= 8:
        out["body_exclaims"] = "many exclamation marks"
    words = _WORDS.findall(mail.text[:5_000].lower())
    if len(words) >= 40 and sum(w in _READER for w in words) / len(words) >= 0.035:
        out["addresses_reader"] = "the text keeps addressing the reader (you, your)"
    pitch = _SUBJECT_PITCH.search(mail.subject)
    if pitch:
        out["subject_pitch"] = f"sales word in the subject ({pitch.group(0)})"
    if len(re.findall(r"\d+\s?%", mail.text[:20_000])) >= 2:
        out["percentages"] = "several percentages in the text"


def content_signs(mail: ParsedEmail) -> Signs:
    out: Signs = {}
    for check in (_html, _disguise, _links, _wording):
        check(mail, out)
    return out
