"""Everyday task requests, a negative for every task (kind ``benign_task``): arithmetic asked in words and symbols,
unit, temperature, currency and time conversions (with the misspellings people type), short messages addressed to
"you" (check-ins, thanks), and scheduling and
system-administration how-tos whose verbs also occur in harmful or threatening text ("kill the process", "take
five away", "run it every night at 3am", "make a backup", "purge the cache").

Why (issue 12): the char n-gram part of the heads had learnt generic pieces of everyday phrasing from the positives
-- " you"/"take " for toxicity (threats address "you"), " m"/"make "/" every"/" day" for harmful requests ("how do I
make a ...", "every day" in stalking templates) -- because few negatives were plain requests of that shape, so "take
77 away from 95" read as toxic and "run a script every day at 2am" as a harmful request. Written from the
generator's own vocabulary, seeded; never from evaluation/ (neither the guard sets nor the bundled model's held-out
prompts).
"""

from __future__ import annotations

import random

from guardserve.training.guards.data.example import Example

KIND = "benign_task"
PER_FAMILY = 220  # texts drawn from each family (before dedup)

# --- arithmetic -------------------------------------------------------------------------------------------------
ARITH_OPS = (
    "take {a} away from {b}", "take {a} from {b}", "subtract {a} from {b}", "{b} minus {a}", "{b} less {a}",
    "{b} take away {a}", "knock {a} off {b}", "deduct {a} from {b}", "remove {a} from {b}", "{b} - {a}",
    "{b}-{a}", "{a} + {b}", "{a}+{b}", "{a} plus {b}", "add {a} to {b}", "{a} and {b} added together",
    "the sum of {a} and {b}", "{a} times {b}", "{a} x {b}", "{a}*{b}", "{a} multiplied by {b}",
    "{b} divided by {a}", "{b} / {a}", "{b} split {a} ways", "{a} percent of {b}", "{a}% of {b}", "double {b}",
    "half of {b}", "{b} squared", "the square root of {b}", "{b} shared between {a} people",
    "the difference between {b} and {a}", "{b} with {a} knocked off", "{a} fewer than {b}", "{a} more than {b}",
    "{b} take off {a}", "{b} after I give away {a}", "{b} cut by {a}", "{b} reduced by {a}", "{a} into {b}",
)  # fmt: skip
ARITH_FRAMES = (
    "What do you get if you {op}?", "what's {op}", "whats {op}?", "What is {op}?", "Can you work out {op}?",
    "quick one: {op}", "Could you calculate {op} for me?", "help me with {op}", "{op} = ?", "{op}?", "{op}",
    "I need to know {op}.", "My kid asks: what is {op}?", "Please compute {op}.", "how much is {op}",
    "Tell me {op}, please.", "If I {op}, what's left?", "calc {op}", "what does {op} come to?",
    "Homework question: {op}. Show the steps.", "Is {op} more than a hundred?", "ok so {op} equals what",
)  # fmt: skip
STORIES = (
    "I had {b} stickers and gave {a} to my sister. How many do I have now?",
    "There are {b} chairs and {a} are taken. How many are free?",
    "A shop knocks {a} dollars off a {b} dollar jacket. What's the new price?",
    "If a train leaves with {b} passengers and {a} get off, how many remain?",
    "We need {b} cupcakes and have baked {a}. How many more?",
    "My budget is {b} and rent takes {a}. What's left over?",
    "I ran {a} km on Monday and {b} km on Tuesday. What's the total?",
    "A recipe wants {a} eggs per batch and I make {b} batches. How many eggs?",
    "Split a {b} euro bill {a} ways, how much each?",
    "I scored {a} out of {b}. What percentage is that?",
)  # fmt: skip

# --- conversions ------------------------------------------------------------------------------------------------
UNIT_PAIRS = (
    ("kilometres", "miles"), ("miles", "kilometers"), ("metres", "feet"), ("feet", "meters"), ("inches", "cm"),
    ("centimetres", "inches"), ("kilograms", "pounds"), ("pounds", "kg"), ("ounces", "grams"), ("grams", "ounces"),
    ("litres", "gallons"), ("gallons", "liters"), ("cups", "millilitres"), ("tablespoons", "teaspoons"),
    ("stone", "kilos"), ("yards", "metres"), ("acres", "hectares"), ("square feet", "square metres"),
    ("mph", "km/h"), ("km/h", "mph"), ("hours", "minutes"), ("minutes", "seconds"), ("days", "hours"),
    ("weeks", "days"), ("megabytes", "gigabytes"), ("GB", "MB"), ("knots", "mph"), ("pints", "litres"),
    ("millimetres", "inches"), ("tonnes", "pounds"),
)  # fmt: skip
TEMPS = (
    ("fahrenheit", "celsius"), ("celsius", "fahrenheit"), ("farenheit", "celsius"), ("fahrenhiet", "celcius"),
    ("celcius", "farenheit"), ("kelvin", "celsius"), ("celsius", "kelvin"), ("degrees f", "degrees c"),
    ("F", "C"), ("C", "F"), ("°F", "°C"), ("°C", "°F"), ("farenhight", "celsuis"), ("degress fahrenheit", "celsius"),
)  # fmt: skip
CURRENCIES = (
    ("dollars", "euros"), ("euros", "dollars"), ("pounds", "dollars"), ("USD", "EUR"), ("GBP", "JPY"),
    ("yen", "dollars"), ("rupees", "pounds"), ("Swiss francs", "euros"), ("CAD", "USD"), ("pesos", "dollars"),
)  # fmt: skip
CONVERT_FRAMES = (
    "convert {n} {x} to {y}", "conver {n} {x} to {y}", "convrt {n} {x} into {y}", "Convert {n} {x} into {y}.",
    "How many {y} is {n} {x}?", "how many {y} in {n} {x}", "{n} {x} in {y}?", "{n} {x} to {y}", "{n}{x} to {y}",
    "What is {n} {x} in {y}?", "whats {n} {x} in {y}", "Change {n} {x} to {y}, please.",
    "Turn {n} {x} into {y}.", "Express {n} {x} in {y}.", "Can you convert {n} {x} to {y} for me?",
    "I have {n} {x}. How much is that in {y}?", "how much is {n} {x} in {y}", "{n} {x} equals how many {y}?",
    "What's {n} {x} when you convert it to {y}?", "quick conversion: {n} {x} -> {y}",
    "Recipe says {n} {x}; what is that in {y}?", "is {n} {x} more or less than {m} {y}?",
    "how many {y} make {n} {x}?", "converting {n} {x} to {y} -- what do I get?", "{x} to {y}: {n}",
)  # fmt: skip
TEMP_EXTRA = (
    "It's {n} degrees {x} outside, what is that in {y}?", "Is {n} {x} hot or cold in {y}?",
    "Oven is at {n} {x}, what's that in {y}?", "my thermometer says {n} {x}, convert to {y}",
    "what is the formula to turn {x} into {y}?", "how do you convert {x} to {y} in your head?",
)  # fmt: skip

# --- scheduling and system administration -----------------------------------------------------------------------
JOBS = (
    "a script", "my backup script", "a cron job", "a Python script", "the cleanup job", "a shell script",
    "the report generator", "a database backup", "log rotation", "a sync job", "my scraper", "the build",
    "a reminder", "a health check", "certificate renewal", "the nightly export", "a batch file", "a PowerShell script",
)  # fmt: skip
WHEN = (
    "each day", "every day at 3:15", "every night at 3 am", "daily at 04:30", "every hour", "every 15 minutes",
    "every Monday morning", "once a week", "on the first of every month", "at midnight", "every weekday at 9",
    "twice a day", "at 6pm every day", "every five minutes", "at boot", "every Sunday at 1am", "each morning",
)  # fmt: skip
SCHED_FRAMES = (
    "How do I make {job} run {when}?", "How can I schedule {job} to run {when}?", "Set up {job} to run {when}.",
    "What's the crontab line for {job} {when}?", "how to run {job} {when} on linux", "run {job} {when}",
    "Write a cron expression for {job} {when}.", "Can systemd timers run {job} {when}?",
    "How do I get {job} to execute {when} on Windows?", "I want {job} to fire {when}. How?",
    "schedule {job} {when} on my mac", "cron: {job} {when}, what do I type?",
    "Is there a way to trigger {job} {when} without cron?", "make {job} go off {when}",
    "Help me automate {job} {when}.", "what's the easiest way to run {job} {when}",
)  # fmt: skip
SYSADMIN = (
    "How do I kill a process that won't stop?", "kill the process on port {port}", "How do I kill all node processes?",
    "terminate the EC2 instance when the job finishes", "How do I terminate a hung ssh session?",
    "purge the CDN cache after a deploy", "How do I purge old docker images?", "nuke node_modules and reinstall",
    "wipe the build folder before compiling", "drop the test database and recreate it",
    "how to kill a zombie process in linux", "force quit an app that is frozen on my mac",
    "delete log files older than {n} days", "How do I back up my home folder every night?",
    "rsync my photos to the NAS every week", "clean up /tmp automatically", "restart nginx every night",
    "How do I make a bootable USB stick?", "make a backup of my phone before the update",
    "How do I make a zip of this folder?", "How do I make a new git branch?", "make an alias for git status",
    "How do I make a Python script executable?", "how do i make a spreadsheet add up a column",
    "execute a SQL script on startup", "shoot off a reminder email every Friday", "fire off a build on every push",
    "take down the staging server for maintenance", "take the old server offline", "knock out the backlog of tickets",
    "hit the API every {n} minutes", "attack the bug list this sprint", "target the arm64 build too",
    "blow away the cache and rebuild", "how to stop a service from starting at boot",
    "kill the background job I started with &", "How do I take a screenshot every 10 minutes?",
    "How can I make my laptop shut down at 11pm?", "make the lights turn on at sunset with home assistant",
)  # fmt: skip
OTHER_TASKS = (
    "How do I make a budget for the month?", "make a shopping list for tacos", "How do I make a pivot table?",
    "make me a packing list for a beach weekend", "How do I make a sourdough starter?", "make a chart of my expenses",
    "How do I make a playlist on my phone?", "How do I make my resume one page?", "make a study timetable for exams",
    "Help me make a chore rota for the kids.", "How do I make an appointment reminder in my calendar?",
    "How do I set an alarm for 6am every weekday?", "remind me to water the plants every three days",
    "How do I split a bill in a spreadsheet?", "work out my hourly rate from a yearly salary of {big}",
    "how long is {n} hours in days", "what time is it in Tokyo when it's {h}pm in London?",
    "how many days until the end of the month?", "round {n}.{m} to the nearest whole number",
    "what's {n} rounded to the nearest ten", "how do I count words in a document?",
)  # fmt: skip

# --- short messages addressed to "you" (check-ins, thanks, compliments): threats and insults address "you" too,
# so without these a greeting plus "you" leans toxic in the char n-grams
OPENERS = ("", "", "yo", "yo!", "hey", "hey!", "oi", "hiya", "hi", "heya", "sup", "ok", "so", "hmm", "um")
TO_YOU = (
    "you there?", "are you there?", "you free?", "you busy?", "you up?", "you online?", "you still there?",
    "you awake?", "you got a sec?", "you got a minute?", "can you hear me?", "you still with me?",
    "did you get my message?", "did you see my email?", "are you free later?", "you free this weekend?",
    "you at your desk?", "are you home yet?", "you coming tonight?", "you ready?", "you done yet?",
    "thank you!", "thank you so much, you're a star", "you rock", "you're the best", "you're right",
    "you too!", "see you soon", "see you tomorrow", "miss you!", "love you, mum", "you did great today",
    "you've been really helpful", "can you help me with something?", "could you do me a favour?",
    "what do you think?", "what would you suggest?", "do you know a good recipe?", "do you like jazz?",
    "how about you?", "and you?", "you know what I mean?", "you okay?", "how are you doing?", "where are you?",
    "are you a real person?", "can you speak french?", "do you remember what I asked earlier?",
)  # fmt: skip


def _chat(rng: random.Random) -> str:
    opener = rng.choice(OPENERS)
    text = rng.choice(TO_YOU)
    return f"{opener} {text}".strip() if rng.random() < 0.7 else f"{text} {rng.choice(TO_YOU)}"


def _num(rng: random.Random, low: int = 2, high: int = 99) -> str:
    return str(rng.randint(low, high))


def _arith(rng: random.Random) -> str:
    if rng.random() < 0.2:
        b = rng.randint(10, 200)
        return rng.choice(STORIES).format(a=rng.randint(1, b - 1), b=b)
    b = rng.randint(10, 999)
    op = rng.choice(ARITH_OPS).format(a=rng.randint(1, b), b=b)
    return rng.choice(ARITH_FRAMES).format(op=op)


def _convert(rng: random.Random) -> str:
    roll = rng.random()
    pairs = TEMPS if roll < 0.35 else CURRENCIES if roll < 0.5 else UNIT_PAIRS
    x, y = rng.choice(pairs)
    n = rng.choice((_num(rng, 1, 500), f"{rng.randint(0, 99)}.{rng.randint(1, 9)}", _num(rng, -40, 40)))
    frames = CONVERT_FRAMES + (TEMP_EXTRA if pairs is TEMPS else ())
    return rng.choice(frames).format(n=n, x=x, y=y, m=_num(rng, 1, 500))


def _sched(rng: random.Random) -> str:
    if rng.random() < 0.45:
        return rng.choice(SYSADMIN).format(port=rng.randint(1024, 9999), n=rng.randint(2, 90))
    return rng.choice(SCHED_FRAMES).format(job=rng.choice(JOBS), when=rng.choice(WHEN))


def _other(rng: random.Random) -> str:
    return rng.choice(OTHER_TASKS).format(n=_num(rng), m=_num(rng, 0, 9), h=rng.randint(1, 11),
                                          big=f"{rng.randint(20, 120)},000")  # fmt: skip


def _casual(text: str, rng: random.Random) -> str:
    """How people type: sometimes all lower case without the final punctuation, sometimes with a please."""
    roll = rng.random()
    if roll < 0.25:
        return text.lower().rstrip("?.!")
    if roll < 0.35:
        return f"{text.rstrip('?.!')} pls"
    return text


def generate(rng: random.Random, per_family: int = PER_FAMILY) -> list[Example]:
    """Negatives for every task: ``per_family`` texts from each of arithmetic, conversions and scheduling/sysadmin,
    half as many other everyday tasks and messages addressed to "you"; duplicates are left to the caller's dedup."""
    local = random.Random(rng.random())
    out: list[Example] = []
    for make, count in (
        (_arith, per_family),
        (_convert, per_family),
        (_sched, per_family),
        (_other, per_family // 2),
        (_chat, per_family // 2),
    ):
        out += [Example(_casual(make(local), local), 0, KIND, "en") for _ in range(count)]
    return out
