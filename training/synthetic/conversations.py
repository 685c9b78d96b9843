"""Support-desk conversations full of Faker-made personal data, like real logs: names, e-mails, phones, cards,
addresses, IPs, IBANs. They are what the PII scrubber exists for, and where the privacy canaries hide.
"""

from __future__ import annotations

import random
from typing import Any

from guardserve.training.synthetic.skills import Dialogue

TEMPLATES = (
    ("Hi, this is {name}. Please update my e-mail to {email}.", "Done, {first}. Your e-mail address is now {email}."),
    ("Can you call me back at {phone}? It's about order {order}.",
     "Of course. We will call you back at {phone} about order {order}."),
    ("My name is {name} and I live at {address}. When will my parcel arrive?",
     "Thanks, {first}. Parcels to {city} usually arrive within three working days."),
    ("Send the invoice for order {order} to {email}, please.",
     "The invoice for order {order} is on its way to {email}."),
    ("I'm {name}. My card ending {last4} was charged twice.",
     "Sorry about that, {first}. I have flagged the duplicate charge on the card ending {last4}."),
    ("Which card is on file for {name}?", "The card on file for {name} is {card}."),
    ("Who placed order {order}?", "Order {order} was placed by {name} ({email})."),
    ("Login failed for {email} from {ip}. Is the account locked?",
     "The account {email} is locked after three failed logins from {ip}. It unlocks in 15 minutes."),
    ("Please change the phone number for {name} to {phone}.", "Updated: {name} can now be reached at {phone}."),
    ("Please pay the refund to {iban}. I'm {name}.", "The refund for {name} will be paid to {iban} within five days."),
)  # fmt: skip
CARD_QUESTION = TEMPLATES[5][0]
CARD_REPLY = TEMPLATES[5][1]


def luhn_complete(digits: str) -> str:
    """Append the Luhn check digit (card numbers the PII engine recognises are Luhn-valid)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def random_card(rng: random.Random) -> str:
    number = luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14)))
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


class ConversationMaker:
    def __init__(self, seed: int) -> None:
        from faker import Faker

        self._faker: Any = Faker("en_US")
        self._faker.seed_instance(seed)

    def name(self) -> str:
        return str(self._faker.name())

    def make(self, rng: random.Random) -> Dialogue:
        f = self._faker
        name = f"{f.first_name()} {f.last_name()}"
        values = {
            "name": name,
            "first": name.split()[0],
            "email": f.email(),
            "phone": f.phone_number(),
            "order": f"A-{rng.randrange(100000, 999999)}",
            "address": f.street_address(),
            "city": f.city(),
            "last4": f"{rng.randrange(10000):04d}",
            "card": random_card(rng),
            "ip": f.ipv4_public(),
            "iban": f.iban(),
        }
        user, reply = rng.choice(TEMPLATES)
        return Dialogue("pii_chat", user.format(**values), reply.format(**values))
