"""Build the blind PII evaluation sets and the harmless prompts: ``python evaluation/guards/build_pii_sets.py``.

Deterministic (one seeded RNG per split): the same code writes the same bytes, so the committed JSONL files can be
checked against a rebuild. The frames are hand-written (pii_texts.py); this script fills their ``<<SLOT>>`` markers
with generated values that are valid where validity is checkable (Luhn for cards, mod-97 for IBANs, Base58Check and
Bech32 checksums for bitcoin addresses, real SSN ranges), and records each value's exact character span while
concatenating, then asserts ``text[start:end] == value``. Written without reading the PII guard's code or the
training data generator.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import random
import re
import string
import sys
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the sibling data module (this directory is not a package, so the path goes first)
import pii_texts as T

HERE = Path(__file__).resolve().parent
SLOT_RE = re.compile(r"<<([A-Z0-9_]+)>>")
MIN_POSITIVE = 320
MIN_NEGATIVE = 160
MIN_PER_ENTITY = 25
SEEDS = {"dev": 1201, "test": 1202}
HARMLESS_SEED = 1203
HARMLESS_TOTAL = 150

Gen = Callable[[random.Random], str]

# ---------------------------------------------------------------------------------------------------------------
# Names, places, streets (diverse origins; paired within an origin so the full names are plausible)
# ---------------------------------------------------------------------------------------------------------------
NAME_POOLS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("James", "Emily", "Michael", "Sarah", "Robert", "Hannah", "Tyler"), ("Walker", "Thompson", "Reed", "Parker")),
    (("María", "José", "Lucía", "Alejandro", "Camila", "Diego"), ("García", "Fernández", "López", "Ortega")),
    (("Lukas", "Anna", "Jürgen", "Sophie", "Maximilian", "Katrin"), ("Müller", "Schneider", "Becker", "Wagner")),
    (("Camille", "Étienne", "Manon", "Julien", "Chloé"), ("Dubois", "Lefèvre", "Moreau", "Girard")),
    (("Wei", "Li Na", "Jun", "Xiaoming", "Mei"), ("Zhang", "Wang", "Chen", "Liu")),
    (("Priya", "Arjun", "Ananya", "Rahul", "Deepika"), ("Sharma", "Patel", "Iyer", "Reddy")),
    (("Chinedu", "Ngozi", "Oluwaseun", "Amara", "Emeka"), ("Okafor", "Adeyemi", "Nwosu", "Balogun")),
    (("Omar", "Fatima", "Youssef", "Layla", "Karim"), ("Haddad", "Al-Sayed", "Mansour", "Khalil")),
    (("Haruto", "Yui", "Sota", "Aoi"), ("Tanaka", "Suzuki", "Watanabe", "Yamamoto")),
    (("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun"), ("Kim", "Park", "Choi", "Jung")),
    (("Minh", "Linh", "Quang", "Thao"), ("Nguyen", "Tran", "Pham", "Le")),
    (("Katarzyna", "Piotr", "Agnieszka", "Tomasz"), ("Kowalski", "Nowak", "Wiśniewska", "Zieliński")),
    (("Dmitri", "Olga", "Sergei", "Natalia"), ("Ivanov", "Petrova", "Smirnov", "Volkova")),
    (("Emre", "Elif", "Mehmet", "Zeynep"), ("Yılmaz", "Demir", "Kaya", "Şahin")),
    (("João", "Ana Clara", "Thiago", "Beatriz"), ("Silva", "Santos", "Oliveira", "Costa")),
    (("Siobhán", "Liam", "Aoife", "Seamus"), ("O'Brien", "Murphy", "Kelly", "Byrne")),
    (("Astrid", "Lars", "Ingrid", "Erik"), ("Johansson", "Lindqvist", "Andersen", "Berg")),
)
CITIES = (
    "Lisbon",
    "Osaka",
    "Nairobi",
    "São Paulo",
    "Toronto",
    "Manchester",
    "Lyon",
    "Hamburg",
    "Seville",
    "Rotterdam",
    "Chicago",
    "Austin",
    "Melbourne",
    "Bangalore",
    "Lagos",
    "Cairo",
    "Istanbul",
    "Kraków",
    "Seoul",
    "Hanoi",
    "Vancouver",
    "Dublin",
    "Edinburgh",
    "Munich",
    "Marseille",
    "Valencia",
    "Denver",
    "Auckland",
    "Montreal",
    "Buenos Aires",
    "Cape Town",
    "Bordeaux",
    "Leipzig",
    "Porto",
    "Gothenburg",
    "Kyoto",
    "San Diego",
    "New York",
)
COUNTRIES = (
    "Portugal",
    "Japan",
    "Kenya",
    "Brazil",
    "Canada",
    "Germany",
    "France",
    "Spain",
    "Italy",
    "Nigeria",
    "Egypt",
    "Turkey",
    "Poland",
    "South Korea",
    "Vietnam",
    "Ireland",
    "Mexico",
    "Argentina",
    "Sweden",
    "India",
    "Australia",
    "New Zealand",
    "Morocco",
    "Chile",
    "Norway",
    "Greece",
    "Indonesia",
)
US_STREETS = ("Maple", "Oak", "Cedar", "Elm", "Washington", "Lincoln", "Sunset", "Park", "Lake", "Hillcrest", "Pine")
US_SUFFIXES = ("Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Drive", "Dr", "Lane")
US_CITIES = (
    ("Springfield", "IL", "627"),
    ("Portland", "OR", "972"),
    ("Austin", "TX", "787"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Boise", "ID", "837"),
    ("Madison", "WI", "537"),
    ("Tucson", "AZ", "857"),
    ("Brooklyn", "NY", "112"),
    ("Oakland", "CA", "946"),
)
US_FIXED = ("1600 Pennsylvania Ave NW, Washington, DC 20500", "350 Fifth Avenue, New York, NY 10118")
UK_STREETS = ("Elm Grove", "Baker Street", "Victoria Road", "Church Lane", "Mill Street", "Queens Road", "High Street")
UK_TOWNS = (
    ("Leeds", "LS6 2AB"),
    ("Bristol", "BS1 4DJ"),
    ("London", "N1 9GU"),
    ("Oxford", "OX4 1HF"),
    ("Glasgow", "G12 8QQ"),
    ("Cardiff", "CF10 3AT"),
    ("York", "YO1 7HH"),
)
DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Lindenweg", "Gartenstraße", "Schillerstraße", "Am Markt", "Ringstraße")
DE_TOWNS = (
    ("10115", "Berlin"),
    ("80331", "München"),
    ("50667", "Köln"),
    ("20095", "Hamburg"),
    ("60311", "Frankfurt am Main"),
    ("04109", "Leipzig"),
)
FR_STREETS = (
    "rue des Lilas",
    "avenue Victor Hugo",
    "boulevard Voltaire",
    "rue de la République",
    "place du Marché",
    "rue Pasteur",
    "chemin des Vignes",
)
FR_TOWNS = (
    ("75011", "Paris"),
    ("69003", "Lyon"),
    ("13001", "Marseille"),
    ("31000", "Toulouse"),
    ("33000", "Bordeaux"),
    ("44000", "Nantes"),
)
EMAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "web.de",
    "orange.fr",
    "proton.me",
    "icloud.com",
    "gmx.net",
    "hotmail.fr",
    "northwind-traders.com",
    "contoso.io",
    "acmecorp.net",
    "uni-heidelberg.de",
)
URL_HOSTS = (
    "staging.contoso.io",
    "portal.acmecorp.net",
    "www.northwind-traders.com",
    "docs.fabrikam.dev",
    "shop.blue-harbor.co.uk",
    "intranet.lumen-labs.org",
    "api.tailspin.app",
    "www.meinverein.de",
    "blog.petitbateau-voyage.fr",
    "status.quickpay.es",
    "wiki.driftwood.nl",
    "login.secure-verify-account.com",
)
URL_PATHS = (
    "/orders/8812?ref=mail",
    "/login",
    "/docs/setup/vpn",
    "/u/profile",
    "/reset?token=ab12cd",
    "/api/v2/health",
    "/blog/2024/05/release-notes",
    "/p/11803",
    "/support/ticket/5521",
    "/downloads/latest",
    "",
    "/",
)
BARE_HOSTS = (
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "docs.contoso.io",
    "notion.so",
    "example-shop.com",
    "drive.lumen-labs.org",
    "wiki.driftwood.nl",
)
BARE_PATHS = (
    "/jdoe/dotfiles",
    "/team/handbook",
    "/setup/vpn",
    "/spec/v3",
    "/releases/tag/v1.4.0",
    "/shared/q3-plan",
    "/guides/onboarding",
    "/issues/42",
)


def ascii_fold(text: str) -> str:
    """Names with diacritics become plausible email local parts (José -> jose)."""
    folded = unicodedata.normalize("NFKD", text.lower().replace("ı", "i")).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded)


def person_parts(rng: random.Random) -> tuple[str, str]:
    firsts, lasts = rng.choice(NAME_POOLS)
    return rng.choice(firsts), rng.choice(lasts)


def person(rng: random.Random) -> str:
    first, last = person_parts(rng)
    return f"{first} {last}"


def email(rng: random.Random) -> str:
    first, last = (ascii_fold(part) for part in person_parts(rng))
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}{rng.randint(1, 99)}",
            f"{last}.{first[0]}",
            f"{first}_{last}{rng.randint(70, 99)}",
            f"{first}+newsletter",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


# ---------------------------------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------------------------------
def phone_us(rng: random.Random) -> str:
    area = rng.choice(("415", "212", "312", "617", "206", "512", "303", "646", "702", "919"))
    exchange = str(rng.randint(201, 989))
    line = digits(rng, 4)
    fmt = rng.choice(
        (
            "({a}) {e}-{l}",
            "{a}-{e}-{l}",
            "{a}.{e}.{l}",
            "+1 {a} {e} {l}",
            "+1-{a}-{e}-{l}",
            "1 ({a}) {e}-{l}",
            "+1 ({a}) {e}-{l}",
        )
    )
    return fmt.format(a=area, e=exchange, l=line)


def phone_uk(rng: random.Random) -> str:
    return rng.choice(
        (
            f"+44 20 {rng.randint(7000, 8999)} {digits(rng, 4)}",
            f"020 {rng.randint(7000, 8999)} {digits(rng, 4)}",
            f"+44 7{rng.randint(400, 999)} {digits(rng, 6)}",
            f"07{rng.randint(400, 999)} {digits(rng, 6)}",
            f"(0161) {rng.randint(200, 999)} {digits(rng, 4)}",
            f"+44 (0)113 {rng.randint(200, 999)} {digits(rng, 4)}",
        )
    )


def phone_de(rng: random.Random) -> str:
    return rng.choice(
        (
            f"+49 30 {digits(rng, 8)}",
            f"030 {rng.randint(2, 9)}{digits(rng, 7)}",
            f"+49 (0)89 {rng.randint(1, 9)}{digits(rng, 6)}",
            f"0171 {rng.randint(1, 9)}{digits(rng, 6)}",
            f"+49 151 {rng.randint(1, 9)}{digits(rng, 7)}",
            f"0221/{rng.randint(1, 9)}{digits(rng, 6)}",
            f"+49 40 {digits(rng, 3)} {digits(rng, 4)}",
        )
    )


def phone_fr(rng: random.Random) -> str:
    pairs = [f"{rng.randint(10, 99)}" for _ in range(4)]
    lead = rng.choice(("1", "4", "6", "7", "9"))
    return rng.choice(
        (
            f"0{lead} " + " ".join(pairs),
            f"+33 {lead} " + " ".join(pairs),
            f"0{lead}." + ".".join(pairs),
            f"+33 (0){lead} " + " ".join(pairs),
            f"0{lead}" + "".join(pairs),
        )
    )


def phone_intl(rng: random.Random) -> str:
    return rng.choice(
        (
            f"+81 3-{digits(rng, 4)}-{digits(rng, 4)}",
            f"+61 2 {rng.randint(8000, 9999)} {digits(rng, 4)}",
            f"+91 98{digits(rng, 3)} {digits(rng, 5)}",
            f"+55 11 9{digits(rng, 4)}-{digits(rng, 4)}",
            f"+34 6{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}",
            f"+31 20 {digits(rng, 3)} {digits(rng, 4)}",
            f"+353 87 {digits(rng, 3)} {digits(rng, 4)}",
            f"+254 7{digits(rng, 2)} {digits(rng, 6)}",
            f"+52 55 {digits(rng, 4)} {digits(rng, 4)}",
            f"+41.44.{digits(rng, 3)}.{digits(rng, 2)}.{digits(rng, 2)}",
        )
    )


def phone(rng: random.Random) -> str:
    return rng.choice((phone_us, phone_uk, phone_de, phone_fr, phone_intl))(rng)


# ---------------------------------------------------------------------------------------------------------------
# Cards (Luhn), SSN, IBAN (mod 97), IPs, URLs, bitcoin
# ---------------------------------------------------------------------------------------------------------------
def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + digits(rng, length - len(prefix) - 1)
    check = next(c for c in string.digits if luhn_ok(body + c))
    return body + check


def group_card(number: str, rng: random.Random) -> str:
    sep = rng.choice((" ", "-", "", " "))
    sizes = (4, 6, 5) if len(number) == 15 else (4, 4, 4, 4)
    parts, pos = [], 0
    for size in sizes:
        parts.append(number[pos : pos + size])
        pos += size
    return sep.join(parts)


def card_visa(rng: random.Random) -> str:
    return group_card(luhn_complete("4", 16, rng), rng)


def card_amex(rng: random.Random) -> str:
    return group_card(luhn_complete(rng.choice(("34", "37")), 15, rng), rng)


def card_mc(rng: random.Random) -> str:
    return group_card(luhn_complete(str(rng.randint(51, 55)), 16, rng), rng)


def card_mc2(rng: random.Random) -> str:
    return group_card(luhn_complete(str(rng.randint(2221, 2720)), 16, rng), rng)


def card_disc(rng: random.Random) -> str:
    prefix = rng.choice(("6011", "65", str(rng.randint(644, 649))))
    return group_card(luhn_complete(prefix, 16, rng), rng)


def card(rng: random.Random) -> str:
    return rng.choice((card_visa, card_amex, card_mc, card_mc2, card_disc))(rng)


def ssn(rng: random.Random) -> str:
    """Issuable ranges only: area 001-899 but not 666, group 01-99, serial 0001-9999."""
    area = rng.choice([a for a in range(1, 900) if a != 666])
    value = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    sep = rng.choice(("-", "-", "-", " "))
    return f"{value[:3]}{sep}{value[3:5]}{sep}{value[5:]}"


IBAN_BBAN: dict[str, tuple[tuple[str, int], ...]] = {
    "DE": (("n", 18),),
    "GB": (("a", 4), ("n", 14)),
    "FR": (("n", 10), ("c", 11), ("n", 2)),
    "ES": (("n", 20),),
    "NL": (("a", 4), ("n", 10)),
    "IT": (("a", 1), ("n", 10), ("c", 12)),
    "BE": (("n", 12),),
    "AT": (("n", 16),),
    "CH": (("n", 5), ("c", 12)),
    "PL": (("n", 24),),
    "IE": (("a", 4), ("n", 14)),
    "PT": (("n", 21),),
}


def iban_numeric(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    return iban_numeric(compact[4:] + compact[:4]) % 97 == 1


def iban_for(country: str, rng: random.Random) -> str:
    alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}
    bban = "".join(rng.choice(alphabet[kind]) for kind, n in IBAN_BBAN[country] for _ in range(n))
    check = 98 - iban_numeric(bban + country + "00") % 97
    compact = f"{country}{check:02d}{bban}"
    assert iban_ok(compact)
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def iban(rng: random.Random) -> str:
    return iban_for(rng.choice(sorted(IBAN_BBAN)), rng)


def ip4(rng: random.Random) -> str:
    first = rng.choice((10, 172, 192, rng.randint(23, 223)))
    if first == 192:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if first == 172:
        return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ip6(rng: random.Random) -> str:
    prefix = rng.choice((0x2001_0DB8, 0x2A00_1450, 0x2606_4700, 0xFE80_0000, 0x2A02_0810))
    groups = [rng.randint(0, 0xFFFF) for _ in range(6)]
    for i in rng.sample(range(6), rng.randint(0, 4)):  # zero runs so most addresses compress
        groups[i] = 0
    value = (prefix << 96) | sum(g << (16 * (5 - i)) for i, g in enumerate(groups))
    address = ipaddress.IPv6Address(value)
    return address.exploded if rng.random() < 0.2 else str(address)


def url(rng: random.Random) -> str:
    return f"{rng.choice(('https://', 'https://', 'http://'))}{rng.choice(URL_HOSTS)}{rng.choice(URL_PATHS)}"


def url_bare(rng: random.Random) -> str:
    return f"{rng.choice(BARE_HOSTS)}{rng.choice(BARE_PATHS)}"


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, rem = divmod(number, 58)
        out = B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def segwit_v0(program: bytes) -> str:
    """BIP-173 Bech32 address for witness version 0 on mainnet (hrp 'bc')."""
    acc, bits, data = 0, 0, [0]
    for byte in program:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    hrp = [ord(c) >> 5 for c in "bc"] + [0] + [ord(c) & 31 for c in "bc"]
    pm = bech32_polymod(hrp + data + [0] * 6) ^ 1
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return "bc1" + "".join(BECH32[d] for d in data + checksum)


def btc(rng: random.Random) -> str:
    kind = rng.choice(("p2pkh", "p2sh", "bech32"))
    program = bytes(rng.randint(0, 255) for _ in range(20))
    if kind == "bech32":
        return segwit_v0(program)
    return base58check((b"\x00" if kind == "p2pkh" else b"\x05") + program)


# ---------------------------------------------------------------------------------------------------------------
# Street addresses
# ---------------------------------------------------------------------------------------------------------------
def addr_us(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(US_FIXED)
    street = f"{rng.randint(12, 9800)} {rng.choice(US_STREETS)} {rng.choice(US_SUFFIXES)}"
    if rng.random() < 0.25:
        street += f", Apt {rng.randint(1, 30)}{rng.choice('ABCD')}"
    if rng.random() < 0.2:
        return street
    city, state, zip3 = rng.choice(US_CITIES)
    return f"{street}, {city}, {state} {zip3}{digits(rng, 2)}"


def addr_uk(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return "221B Baker Street, London NW1 6XE"
    town, postcode = rng.choice(UK_TOWNS)
    street = f"{rng.randint(1, 180)}{rng.choice(('', '', 'A', 'B'))} {rng.choice(UK_STREETS)}"
    return street if rng.random() < 0.2 else f"{street}, {town} {postcode}"


def addr_de(rng: random.Random) -> str:
    plz, town = rng.choice(DE_TOWNS)
    return f"{rng.choice(DE_STREETS)} {rng.randint(1, 120)}{rng.choice(('', '', 'a'))}, {plz} {town}"


def addr_fr(rng: random.Random) -> str:
    cp, town = rng.choice(FR_TOWNS)
    return f"{rng.randint(1, 140)}{rng.choice(('', '', ' bis'))} {rng.choice(FR_STREETS)}, {cp} {town}"


def addr(rng: random.Random) -> str:
    return rng.choice((addr_us, addr_us, addr_uk, addr_de, addr_fr))(rng)


SLOTS: dict[str, tuple[str, Gen]] = {
    "EMAIL": ("EMAIL_ADDRESS", email),
    "PHONE": ("PHONE_NUMBER", phone),
    "PHONE_US": ("PHONE_NUMBER", phone_us),
    "PHONE_UK": ("PHONE_NUMBER", phone_uk),
    "PHONE_DE": ("PHONE_NUMBER", phone_de),
    "PHONE_FR": ("PHONE_NUMBER", phone_fr),
    "PHONE_INTL": ("PHONE_NUMBER", phone_intl),
    "CARD": ("CREDIT_CARD", card),
    "CARD_VISA": ("CREDIT_CARD", card_visa),
    "CARD_AMEX": ("CREDIT_CARD", card_amex),
    "CARD_MC": ("CREDIT_CARD", card_mc),
    "CARD_MC2": ("CREDIT_CARD", card_mc2),
    "CARD_DISC": ("CREDIT_CARD", card_disc),
    "SSN": ("US_SSN", ssn),
    "IBAN": ("IBAN_CODE", iban),
    "IBAN_DE": ("IBAN_CODE", lambda r: iban_for("DE", r)),
    "IBAN_GB": ("IBAN_CODE", lambda r: iban_for("GB", r)),
    "IBAN_FR": ("IBAN_CODE", lambda r: iban_for("FR", r)),
    "IBAN_ES": ("IBAN_CODE", lambda r: iban_for("ES", r)),
    "IBAN_NL": ("IBAN_CODE", lambda r: iban_for("NL", r)),
    "IP4": ("IP_ADDRESS", ip4),
    "IP6": ("IP_ADDRESS", ip6),
    "URL": ("URL", url),
    "URL_BARE": ("URL", url_bare),
    "PERSON": ("PERSON", person),
    "FIRST": ("PERSON", lambda r: person_parts(r)[0]),
    "LAST": ("PERSON", lambda r: person_parts(r)[1]),
    "CITY": ("LOCATION", lambda r: r.choice(CITIES)),
    "COUNTRY": ("LOCATION", lambda r: r.choice(COUNTRIES)),
    "ADDR_US": ("STREET_ADDRESS", addr_us),
    "ADDR_UK": ("STREET_ADDRESS", addr_uk),
    "ADDR_DE": ("STREET_ADDRESS", addr_de),
    "ADDR_FR": ("STREET_ADDRESS", addr_fr),
    "ADDR": ("STREET_ADDRESS", addr),
    "BTC": ("CRYPTO", btc),
}


# ---------------------------------------------------------------------------------------------------------------
# Hard-negative look-alike values (never valid PII: digit runs that could be cards fail Luhn, no dotted quads)
# ---------------------------------------------------------------------------------------------------------------
def hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def neg_sku(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{digits(rng, 2)}-{digits(rng, 4)}-{digits(rng, 4)}",
            f"SKU-{rng.choice(('AB', 'XT', 'QZ'))}-{digits(rng, 5)}",
            f"{rng.choice(('BX', 'LT', 'K'))}{digits(rng, 6)}",
            f"{digits(rng, 8)}",
        )
    )


def neg_order(rng: random.Random) -> str:
    return rng.choice(
        (
            f"#{digits(rng, 7)}",
            f"ORD-2024-{digits(rng, 6)}",
            f"4500{digits(rng, 6)}",
            f"A-{digits(rng, 5)}-B",
            f"1Z{hexstr(rng, 6).upper()}{digits(rng, 10)}",
            f"INC{digits(rng, 7)}",
            f"RMA-{digits(rng, 4)}-{digits(rng, 3)}",
        )
    )


def neg_ts(rng: random.Random) -> str:
    seconds = rng.randint(1_500_000_000, 1_790_000_000)
    return rng.choice((str(seconds), f"{seconds}{digits(rng, 3)}", f"{seconds}.{digits(rng, 3)}"))


def neg_ver(rng: random.Random) -> str:
    return rng.choice(
        (
            f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
            f"{rng.randint(0, 3)}.{rng.randint(0, 12)}.0-rc.{rng.randint(1, 5)}",
            f"10.0.{rng.randint(19041, 22631)}.{rng.randint(1000, 4000)}",
            f"6.{rng.randint(1, 9)}.{rng.randint(0, 60)}-{rng.randint(100, 300)}-generic",
            f"{rng.randint(2022, 2025)}.{rng.randint(1, 12)}.{rng.randint(1, 28)}",
        )
    )


def neg_build(rng: random.Random) -> str:
    return rng.choice(
        (
            f"20240{rng.randint(1, 9)}{rng.randint(10, 28)}.{rng.randint(1, 9)}",
            f"#{digits(rng, 5)}",
            f"0x{hexstr(rng, 8).upper()}",
            f"E{digits(rng, 4)}",
            f"b{rng.randint(1000, 9999)}",
        )
    )


def neg_hash(rng: random.Random) -> str:
    return hexstr(rng, rng.choice((7, 12, 32, 40, 64)))


def neg_date(rng: random.Random) -> str:
    y, m, d = rng.randint(2021, 2026), rng.randint(1, 12), rng.randint(1, 28)
    month = (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    )[m - 1]
    return rng.choice((f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{month} {d}, {y}", f"{d} {month[:3]} {y}"))


def neg_price(rng: random.Random) -> str:
    whole, cents = rng.randint(1, 4999), rng.randint(0, 99)
    return rng.choice(
        (
            f"${whole:,}.{cents:02d}",
            f"€{whole}.{cents:02d}",
            f"{whole:,}.{cents:02d} EUR".replace(",", "."),
            f"£{whole}",
            f"{whole} USD",
        )
    )


def neg_meas(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.randint(1, 90)}.{rng.randint(0, 9)} kg",
            f"{rng.randint(1, 900)} ms",
            f"{rng.randint(1, 40)}.{rng.randint(0, 9)} mm",
            f"{rng.randint(100, 400)} W",
            f"{rng.randint(1, 9)}.{rng.randint(0, 9)} bar",
            f"{rng.randint(5, 60)} s",
            f"{rng.randint(1, 5)},{rng.randint(100, 999)} mAh",
            f"{rng.randint(2, 95)} °C",
        )
    )


def neg_part(rng: random.Random) -> str:
    return rng.choice(
        (
            f"X{rng.randint(1, 9)}-{digits(rng, 4)}-{digits(rng, 2)}B",
            f"PN {digits(rng, 4)}-{digits(rng, 3)}",
            f"MX-{rng.randint(100, 999)}{rng.choice('ABCDEF')}",
            f"{hexstr(rng, 4).upper()}-{digits(rng, 6)}",
        )
    )


def neg_dur(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.randint(1, 900)} ms",
            f"{rng.randint(5, 90)} s",
            f"{rng.randint(2, 15)} minutes",
            f"{rng.randint(1, 9)}.{rng.randint(0, 9)} s",
        )
    )


NEGATIVE_SLOTS: dict[str, Gen] = {
    "DUR": neg_dur,
    "WEIGHT": lambda r: f"{r.randint(1, 90)}.{r.randint(0, 9)} kg",
    "POWER": lambda r: r.choice((f"{r.randint(100, 900)} W", f"{r.randint(1, 20)}.{r.randint(0, 9)} A")),
    "PRESSURE": lambda r: r.choice((f"{r.randint(1, 9)}.{r.randint(0, 9)} bar", f"{r.randint(950, 1050)} hPa")),
    "SKU": neg_sku,
    "ORDER": neg_order,
    "TS": neg_ts,
    "VER": neg_ver,
    "BUILD": neg_build,
    "HASH": neg_hash,
    "DATE": neg_date,
    "PRICE": neg_price,
    "MEAS": neg_meas,
    "PART": neg_part,
    "UUID": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
}

CARD_LIKE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
DOTTED_QUAD = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")
SSN_LIKE = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")


def looks_like_pii(text: str) -> bool:
    """A hard negative must not hold a value a strict validator would accept (else its label would be wrong)."""
    if "@" in text or "http" in text or "www." in text or SSN_LIKE.search(text):
        return True
    if any(luhn_ok(re.sub(r"\D", "", m.group())) for m in CARD_LIKE.finditer(text)):
        return True
    return any(all(int(g) <= 255 for g in m.groups()) for m in DOTTED_QUAD.finditer(text))


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------
Span = dict[str, int | str]
Record = dict[str, object]


def render(frame: str, rng: random.Random) -> tuple[str, list[Span]]:
    """Fill a positive frame, recording each value's span while concatenating (never searching afterwards)."""
    out: list[str] = []
    spans: list[Span] = []
    pos = length = 0
    for match in SLOT_RE.finditer(frame):
        literal = frame[pos : match.start()]
        out.append(literal)
        length += len(literal)
        entity, gen = SLOTS[match.group(1)]
        value = gen(rng)
        spans.append({"start": length, "end": length + len(value), "entity": entity})
        out.append(value)
        length += len(value)
        pos = match.end()
    out.append(frame[pos:])
    text = "".join(out)
    return text, spans


def check_positive(text: str, spans: list[Span], values: list[str] | None = None) -> None:
    assert spans, text
    previous_end = 0
    for span in spans:
        start, end = int(span["start"]), int(span["end"])
        assert previous_end <= start < end <= len(text), (text, span)
        piece = text[start:end]
        assert piece == piece.strip() and piece, (text, span)
        if span["entity"] == "CREDIT_CARD":
            assert luhn_ok(re.sub(r"\D", "", piece)), piece
        if span["entity"] == "IBAN_CODE":
            assert iban_ok(piece), piece
        if span["entity"] == "IP_ADDRESS":
            ipaddress.ip_address(piece)
        previous_end = end
    if values is not None:
        assert [text[int(s["start"]) : int(s["end"])] for s in spans] == values


def render_checked(frame: str, rng: random.Random) -> tuple[str, list[Span]]:
    text, spans = render(frame, rng)
    # independent check: the n-th span holds the n-th value, found by walking the frame's literals
    values, cursor = [], 0
    literals = SLOT_RE.split(frame)[0::2]
    for i, literal in enumerate(literals[:-1]):
        assert text.startswith(literal, cursor)
        cursor += len(literal)
        nxt = literals[i + 1]
        end = int(spans[i]["end"])
        assert text.startswith(nxt, end)
        values.append(text[cursor:end])
        cursor = end
    check_positive(text, spans, values)
    return text, spans


def fill_negative(frame: str, rng: random.Random) -> str:
    for _ in range(100):
        text = SLOT_RE.sub(lambda m: NEGATIVE_SLOTS[m.group(1)](rng), frame)
        if not looks_like_pii(text):
            return text
    raise AssertionError(f"could not fill {frame!r} without a PII look-alike that validates")


def build_split(split: str) -> list[Record]:
    rng = random.Random(SEEDS[split])
    positives = T.DEV_POSITIVE if split == "dev" else T.TEST_POSITIVE
    fixed = T.DEV_NEGATIVE_FIXED if split == "dev" else T.TEST_NEGATIVE_FIXED
    slotted = T.DEV_NEGATIVE_SLOTTED if split == "dev" else T.TEST_NEGATIVE_SLOTTED
    records: list[Record] = []
    seen: set[str] = set()
    rounds = -(-MIN_POSITIVE // len(positives))
    for _ in range(rounds):
        for frame in positives:
            text, spans = render_checked(frame, rng)
            if text not in seen:
                seen.add(text)
                records.append({"text": text, "spans": spans, "kind": "positive"})
    negatives = list(fixed)
    while len(negatives) < MIN_NEGATIVE:
        for frame in slotted:
            negatives.append(fill_negative(frame, rng))
    for text in negatives:
        assert not looks_like_pii(text), text
        assert not SLOT_RE.search(text), text
        if text not in seen:
            seen.add(text)
            records.append({"text": text, "spans": [], "kind": "hard_negative"})
    rng.shuffle(records)
    return records


def harmless_prompts() -> list[dict[str, str]]:
    rng = random.Random(HARMLESS_SEED)
    prompts: list[dict[str, str]] = []
    for phrasing, (low, high) in T.UNIT_PHRASINGS:
        prompts.append({"prompt": phrasing.format(n=rng.randint(low, high)), "kind": "unit_conversion"})
    fixed = (
        [(p, "fact") for p in T.FACTS]
        + [(p, "fact_place") for p in T.FACTS_PLACE]
        + [(p, "definition") for p in T.DEFINITIONS]
        + [(p, "tech_howto") for p in T.TECH_HOWTOS]
        + [(p, "greeting") for p in T.GREETINGS]
        + [(p, "lookalike") for p in T.LOOKALIKES]
    )
    prompts += [{"prompt": p, "kind": k} for p, k in fixed]
    n_arith = HARMLESS_TOTAL - len(prompts)
    seen = {p["prompt"] for p in prompts}
    i = 0
    while len(prompts) < HARMLESS_TOTAL:
        phrasing = T.ARITHMETIC_PHRASINGS[i % len(T.ARITHMETIC_PHRASINGS)]
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        if "-" in phrasing or "minus" in phrasing or "Subtract" in phrasing:
            a, b = max(a, b), min(a, b)
        text = phrasing.format(a=a, b=b)
        i += 1
        if text not in seen:
            seen.add(text)
            prompts.append({"prompt": text, "kind": "arithmetic"})
    assert n_arith > 0 and len(prompts) == HARMLESS_TOTAL
    for p in prompts:
        assert "@" not in p["prompt"] and not CARD_LIKE.search(p["prompt"]), p
    rng.shuffle(prompts)
    return prompts


def write_jsonl(path: Path, rows: list[Record] | list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def entity_counts(records: list[Record]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in records:
        spans = record["spans"]
        assert isinstance(spans, list)
        counts.update(str(span["entity"]) for span in spans)
    return counts


def summary(records: list[Record]) -> str:
    kinds = Counter(str(r["kind"]) for r in records)
    return f"{dict(kinds)} spans={dict(sorted(entity_counts(records).items()))}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory for the JSONL files (default: this one)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {split: build_split(split) for split in ("dev", "test")}
    dev_texts = {str(r["text"]) for r in splits["dev"]}
    assert not dev_texts & {str(r["text"]) for r in splits["test"]}, "a text is in both splits"
    assert not set(T.DEV_POSITIVE) & set(T.TEST_POSITIVE), "dev and test must use different frames"
    for split, records in splits.items():
        entities = entity_counts(records)
        short = {e: n for e, n in entities.items() if n < MIN_PER_ENTITY}
        assert not short and len(entities) == 11, (split, entities)
        write_jsonl(args.out / f"pii.{split}.jsonl", records)
        print(f"pii.{split}.jsonl: {len(records)} texts {summary(records)}")
    prompts = harmless_prompts()
    write_jsonl(args.out / "harmless_prompts.jsonl", prompts)
    print(f"harmless_prompts.jsonl: {len(prompts)} {dict(Counter(p['kind'] for p in prompts))}")


if __name__ == "__main__":
    main()
