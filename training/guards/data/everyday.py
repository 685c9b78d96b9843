"""Everyday harmless text of every length, a negative for every task: greetings, single words, numbers and counting,
acknowledgements, small talk, little creative or practical tasks, neutral statements about people (identity terms
in plain, friendly frames) and short paragraphs made of these.

Without it the heads only ever saw benign text that looks like the positives (look-alikes, criticism, idioms), so a
short or ordinary text sat far outside the training data and the linear heads extrapolated: "one two" scored as
toxic, "Hello!" as an injection, "My coworker is Muslim and ..." as hate. Everything here is written for the
generator; none of it comes from evaluation/.
"""

from __future__ import annotations

import random

from guardserve.training.guards.data.example import Example, fill
from guardserve.training.guards.data.identities import IDENTITIES

KIND = "benign_everyday"

GREETINGS = (
    "hey", "hey there", "hiya", "howdy", "yo", "good morning", "good afternoon", "good evening",
    "morning", "evening all", "greetings", "what's up", "sup", "hello again", "hi team", "hey everyone",
    "hi, are you there?", "hello, anyone home?", "bonjour", "hola", "hallo", "ciao", "hi again, it's me",
)  # fmt: skip
ACKS = (
    "thank you", "thank you so much", "thx", "ty", "cheers", "okay", "k", "sure", "no",
    "yep", "nope", "maybe", "cool", "great", "nice", "got it", "sounds good", "perfect", "awesome", "lol", "haha",
    "hmm", "bye", "goodbye", "see you", "see you later", "good night", "please", "sorry", "my bad", "np",
    "no problem", "you're welcome", "all good", "fine", "alright", "wow", "oh", "right", "exactly", "agreed",
    "that works", "done", "noted", "will do", "one moment", "brb", "ttyl", "gm", "gn", "yes please", "no thanks",
)  # fmt: skip
WORDS = (
    "apple", "table", "river", "blue", "green", "Monday", "Friday", "coffee", "tea", "book", "window", "music",
    "garden", "bicycle", "pizza", "weather", "holiday", "keyboard", "banana", "mountain", "cloud", "pencil",
    "summer", "winter", "dog", "cat", "bird", "chair", "train", "piano", "recipe", "invoice", "password reset",
    "meeting notes", "grocery list", "homework", "birthday", "calendar", "spreadsheet", "umbrella", "sandwich",
    "football", "yoga", "museum", "library", "airport", "hotel", "ticket", "email", "phone", "lamp", "sunset",
    "test", "testing", "test test", "ping", "asdf", "lorem ipsum", "hello world", "foo bar", "abc", "xyz", "?",
    "...", "!", ":)", "<3",
)  # fmt: skip
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "twenty", "thirty", "fifty", "hundred", "thousand",
)  # fmt: skip
SMALL_TALK = (
    "how are you?", "how's it going?", "I'm fine, thanks.", "not bad, you?", "what are you up to?",
    "long day at work today.", "I had pasta for lunch.", "it's raining again here.", "the sun is finally out.",
    "I just got back from the gym.", "my coffee went cold.", "can't wait for the weekend.",
    "I'm so tired today.", "we watched a film last night.", "the kids are at school.", "I love this song.",
    "my cat is sleeping on my keyboard.", "traffic was terrible this morning.", "dinner is almost ready.",
    "I'm learning to play the guitar.", "happy birthday!", "congratulations on the new job!",
    "have a nice day!", "enjoy your weekend!", "safe travels!", "good luck with the exam!",
    "that's a great idea.", "I'm not sure, let me think.", "can you say that again?", "I didn't get that.",
    "sorry, I was away.", "let's talk tomorrow.", "are you a bot?", "who are you?", "what can you do?",
    "what's your name?", "tell me something interesting.", "I'm bored.", "let's chat.", "nice to meet you.",
)  # fmt: skip
FORMS = ("poem", "haiku", "limerick", "short story", "song", "sonnet", "riddle", "joke", "fable", "rhyme")
TOPICS = (
    "the ocean", "mountains", "spring rain", "my cat", "coffee", "the moon", "a lighthouse", "friendship",
    "a rainy Tuesday", "autumn", "a lost sock", "the city at night", "a small boat", "my grandmother's kitchen",
    "the first snow", "a train journey", "a sleepy dog", "sunflowers", "the stars", "a quiet library",
)  # fmt: skip
TASKS = (
    "Write a {form} about {topic}.", "write a {form} about {topic}", "Can you write a {form} about {topic}?",
    "Tell me a {form} about {topic}.", "Compose a {form} on {topic}, please.", "Give me a {form} about {topic}.",
    "Count to {n}.", "count from 1 to {n}", "List the numbers from one to {n}.", "What is {a} plus {b}?",
    "what's {a} times {b}", "Spell the word {word}.", "Give me a synonym for {adjective}.",
    "Translate '{word}' into {lang}.", "What rhymes with {word}?", "Name three kinds of {plural}.",
    "Give me {n} ideas for a weekend.", "Suggest a name for my {pet}.", "Describe {topic} in one sentence.",
    "What does the word '{word}' mean?", "Sort these words: {word}, {word}, {word}.", "Tell me a fun fact.",
    "Make a to-do list for tomorrow.", "Summarise this: the meeting moved to {day}.",
)  # fmt: skip
TASK_SLOTS = {
    "form": FORMS,
    "topic": TOPICS,
    "n": ("five", "twenty", "3", "5", "10", "12", "100"),
    "a": ("2", "7", "12", "15", "40", "99"),
    "b": ("3", "8", "11", "25", "60"),
    "word": ("apple", "light", "river", "window", "garden", "happy", "orange", "music", "stone", "cloud"),
    "adjective": ("happy", "big", "fast", "quiet", "bright", "small"),
    "lang": ("French", "Spanish", "German", "Italian", "Japanese"),
    "plural": ("birds", "trees", "cheese", "pasta", "clouds"),
    "pet": ("puppy", "kitten", "goldfish", "parrot", "hamster"),
    "day": ("Monday", "Thursday", "Friday"),
}
STATEMENTS = (
    "The meeting starts at {time}.", "The train leaves at {time}.", "I bought {thing} yesterday.",
    "My {relative} is visiting next week.", "We're having {food} for dinner.", "The shop closes at {time}.",
    "I left my {thing} at home.", "The package arrived this morning.", "My {relative} loves {food}.",
    "I need to buy milk and eggs.", "It's my {relative}'s birthday on {day}.", "The park is busy on {day}s.",
)  # fmt: skip
STATEMENT_SLOTS = {
    "time": ("nine", "10:30", "noon", "3pm", "half past four", "8 o'clock"),
    "thing": ("umbrella", "a new lamp", "a bike", "my keys", "a cookbook", "charger"),
    "relative": ("sister", "brother", "uncle", "aunt", "cousin", "dad", "mum", "grandpa"),
    "food": ("soup", "tacos", "curry", "lasagna", "pancakes", "salad"),
    "day": ("Monday", "Wednesday", "Saturday", "Sunday"),
}
# Neutral and friendly frames about people; {adj} is filled with every identity (identity-term swap).
PEOPLE = (
    "My {rel} is {adj} and {quality}.", "My {rel} is {adj}.", "My {rel}, who is {adj}, {quality}.",
    "Our new {rel} is {adj} and {quality}.", "I have a {adj} {rel} who {does}.", "Her {rel} is {adj}.",
    "His {rel} is {adj} and {does}.", "{group} in my town {do}.", "I'm {adj} and I {do}.",
    "My {adj} {rel} {does}.", "We are {adj} and we {do}.", "As {person}, I {do}.",
)  # fmt: skip
PEOPLE_SLOTS = {
    "rel": ("coworker", "roommate", "landlord", "teacher", "boss", "dentist", "cousin", "classmate", "friend",
            "doctor", "colleague", "flatmate", "coach", "mentor", "barber"),
    "quality": ("really funny", "very generous", "always helpful", "a great cook", "super friendly",
                "the best listener", "so patient", "very smart", "really thoughtful", "great with kids"),
    "does": ("loves gardening", "plays the violin", "bakes on Sundays", "runs every morning", "teaches maths",
             "makes amazing coffee", "volunteers at the food bank"),
    "do": ("enjoy board games", "volunteer at the food bank", "like cycling", "organise the street party",
           "sing in a choir", "grow tomatoes"),
}  # fmt: skip


def _counting(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        start = rng.randrange(0, 8)
        length = rng.randint(3, 7)
        if rng.random() < 0.5:
            out.append(" ".join(NUMBER_WORDS[start : start + length]))
        else:
            out.append(" ".join(str(i) for i in range(start, start + length)))
    return out


def _people(rng: random.Random, n: int, with_identities: bool) -> list[str]:
    ids = IDENTITIES if with_identities else ()
    adjs = [i.adj for i in ids] or ["tall", "left-handed", "retired", "vegetarian", "a musician"]
    groups = [i.group for i in ids] or ["neighbours", "students", "cyclists"]
    persons = [i.person for i in ids] or ["a parent", "a student", "a nurse"]
    slots = {**PEOPLE_SLOTS, "adj": adjs, "group": groups, "person": persons}
    return [_cap(fill(rng.choice(PEOPLE), slots, rng)) for _ in range(n)]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _variants(rng: random.Random, texts: list[str]) -> list[str]:
    """Casing is irrelevant to the encoder; punctuation and a trailing word are not."""
    out = []
    for text in texts:
        out.append(text)
        if text.rstrip(".!?"):
            out.append(text.rstrip(".!?") + rng.choice(("!", "?", "...", " :)", "!!", " please", " thanks")))
    return out


def texts(rng: random.Random, *, with_identities: bool = True) -> list[str]:
    """All everyday texts, seeded: short ones, then paragraphs of two to six of them (up to a few hundred chars)."""
    short = _variants(rng, [*GREETINGS, *ACKS, *WORDS, *NUMBER_WORDS[2:], *_counting(rng, 60)])
    sentences = [
        *SMALL_TALK,
        *(fill(rng.choice(TASKS), TASK_SLOTS, rng) for _ in range(160)),
        *(fill(rng.choice(STATEMENTS), STATEMENT_SLOTS, rng) for _ in range(60)),
        *_people(rng, 200 if with_identities else 60, with_identities),
    ]
    sentences = [_cap(s) for s in sentences]
    pool = short + sentences
    paragraphs = [" ".join(rng.sample(pool, rng.randint(2, 6))) for _ in range(100)]
    return [*short, *sentences, *paragraphs]


def generate(rng: random.Random, *, with_identities: bool = True) -> list[Example]:
    return [Example(t, 0, KIND, "en") for t in texts(rng, with_identities=with_identities)]


# Held out: never training data. The trainer scores these after fitting and flags a head that fires on any of them
# (an overconfident head extrapolating on text unlike its training data).
PROBE = (
    "three four", "seven", "hey hey", "good day!", "thank you kindly", "okie dokie", "see ya", "uh huh",
    "what time is it?", "I like trains.", "Tell me about penguins.", "Write a poem about rivers.",
    "My aunt is a librarian.", "My manager is Hindu and loves cricket.", "I'm a Jewish teacher.",
    "Our landlady is a lesbian and grows roses.", "As a deaf man, I enjoy cooking.", "Monday morning again.",
    "1, 2, 3, 4", "x", "ok thanks bye", "The bus is late.", "We went to the beach.", "Is it sunny in Rome?",
)  # fmt: skip
