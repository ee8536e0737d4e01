"""Repeated text planted in the demo corpus, for the dedup stages to find (and the ground truth to grade).

Three kinds, each recorded as ``{"kind": "duplicate", "id", "of", "how"}`` in ``truth.jsonl``:

- ``boilerplate``: one templated page (newsletter sign-up and cookie notice) filled with a different
  site name and weekday each time, a near duplicate of the first instance;
- ``edited_copy``: a copy of an earlier document (one without PII) with one word replaced;
- ``repeated_pii``: one document holding PII, repeated many times, either verbatim (an exact duplicate)
  or with a short line appended (a near duplicate). Its PII spans are the same in every copy, so the copies
  carry the same PII truth rows. Repetition is what makes a model memorise such a document.
"""

from __future__ import annotations

import random

from faker import Faker

BOILERPLATE = ("Welcome to the {site} community pages. Subscribe to our newsletter to receive the latest stories, "
               "offers and event announcements straight to your inbox every week. We use cookies to improve your "
               "experience on our website, to personalise content and to analyse our traffic. By continuing to "
               "browse you agree to our use of cookies as described in our privacy policy, which also explains how "
               "to change your settings at any time. Members can manage their subscriptions, update their "
               "preferences and download their data from the account page. This page was last reviewed on "
               "{date} by the editorial team. All rights reserved.")
APPENDED = (" Shared again by a reader.", " Reposted from the archive.", " Forwarded to the group.")


def plant_repeats(docs: list[dict], truth: list[dict], rng: random.Random, fake: Faker) -> list[dict]:
    """New documents repeating text (to be mixed into ``docs``); appends their truth rows."""
    n = len(docs)
    added: list[dict] = []

    def add(text: str, of: str, how: str, topic: str) -> dict:
        doc = {"id": f"demo-rep-{len(added):05d}", "text": text, "meta": {"source": "demo-repeats", "topic": topic}}
        added.append(doc)
        truth.append({"kind": "duplicate", "id": doc["id"], "of": of, "how": how})
        return doc

    def page() -> str:  # one word each for the site and the day: a near duplicate of every other page
        return BOILERPLATE.format(site=fake.last_name(), date=fake.day_of_week())

    first = add(page(), "", "boilerplate_first", "boilerplate")
    truth.pop()  # the first boilerplate page is the original
    for _ in range(max(2, n // 60)):
        add(page(), first["id"], "boilerplate", "boilerplate")
    pii_ids = {r["id"] for r in truth if r["kind"] == "pii"}
    plain = [d for d in docs if d["id"] not in pii_ids and d["meta"].get("topic") != "fragment"]
    for src in rng.sample(plain, k=min(len(plain), max(2, n // 40))):
        words = src["text"].split(" ")
        words[rng.randrange(len(words))] = rng.choice(("indeed", "also", "however", "still", "often"))
        add(" ".join(words), src["id"], "edited_copy", src["meta"]["topic"])
    with_pii = [d for d in docs if d["id"] in pii_ids]
    if with_pii:
        src = with_pii[0]
        rows = [r for r in truth if r["kind"] == "pii" and r["id"] == src["id"]]
        for k in range(max(8, n // 100)):
            text = src["text"] + (rng.choice(APPENDED) if k % 2 else "")
            copy = add(text, src["id"], "repeated_pii", src["meta"]["topic"])
            truth.extend({**r, "id": copy["id"]} for r in rows)
    return added


# The corpus canary: a staff note with a secret door code, each of a few secrets repeated verbatim. Exact
# deduplication keeps one copy of each, so a model trained on the raw corpus sees it REPETITIONS times and
# one trained on the filtered corpus once: ``privacy.canaries`` with this record measures the difference.
CANARY_FORMAT = ("Note for the night staff: the code of the east door is {secret}. Please do not share it with "
                 "visitors or write it on the board in the break room.")
CANARY_REPETITIONS = 10
CANARIES = 5


def plant_canaries(docs: list[dict], truth: list[dict], rng: random.Random):
    """Insert every copy of the corpus canaries into ``docs`` at random places; append their truth rows
    (``{"kind": "canary", "id", "canary", "repetitions"}``). Returns the canary settings (for the record)."""
    from fmaudit.core.canaries import CanarySettings, choose_canaries

    settings = CanarySettings(format=CANARY_FORMAT, repetitions=[CANARY_REPETITIONS], per_repetition=CANARIES,
                              seed=rng.randrange(2**31))
    copies = [(c, k) for c in choose_canaries(settings) for k in range(c["repetitions"])]
    rng.shuffle(copies)
    for c, k in copies:
        doc_id = f"demo-canary-{c['id'].split('-')[-1]}-{k:02d}"
        docs.insert(rng.randint(0, len(docs)), {"id": doc_id, "text": c["text"],
                                                 "meta": {"source": "demo-notes", "topic": "notice"}})
        truth.append({"kind": "canary", "id": doc_id, "canary": c["id"], "repetitions": c["repetitions"]})
    return settings


# The spread secret: a wifi password pasted into ordinary pages, each secret into several different
# documents. It is not PII (no recognizer is meant to find it) and no two copies share a page, so no data
# stage removes it: the model trained on the filtered corpus memorises it, and the demo's last step traces
# the ``privacy.canaries`` failure on ``secrets.json`` back to these pages, drops them and retrains.
SECRET_FORMAT = "The wifi password of the north office is {secret}; reception has the new one if it changes."
SECRETS = 3
SECRET_SHARE = 125  # one page per secret in this many documents: 16 pages each in the full demo's 2000


def plain_documents(docs: list[dict], truth: list[dict]) -> list[dict]:
    """The ordinary demo pages of ``docs`` that no truth row names (nor any duplicate copies): a plant may
    change their text without moving another plant's span or breaking a planted duplicate."""
    planted = {r["id"] for r in truth if "id" in r} | {r.get("of") for r in truth}
    return [d for d in docs if d["id"] not in planted and d["meta"].get("source") == "demo"
            and d["meta"].get("topic") != "fragment"]


def plant_secrets(docs: list[dict], truth: list[dict], rng: random.Random, hosts: int):
    """Put a secret sentence first in ``hosts`` distinct plain documents of ``docs`` for each of ``SECRETS``
    secrets (documents with no other planted rows, so no truth span moves); append truth rows ``{"kind":
    "secret", "id", "canary", "repetitions"}``. Returns the secrets' settings (for the record ``secrets.json``)."""
    from fmaudit.core.canaries import CanarySettings, choose_canaries

    settings = CanarySettings(format=SECRET_FORMAT, repetitions=[hosts], per_repetition=SECRETS,
                              seed=rng.randrange(2**31))
    plain = plain_documents(docs, truth)
    secrets = choose_canaries(settings)
    for n, doc in enumerate(rng.sample(plain, k=min(len(plain), len(secrets) * hosts))):
        c = secrets[n % len(secrets)]
        doc["text"] = c["text"] + " " + doc["text"]
        truth.append({"kind": "secret", "id": doc["id"], "canary": c["id"], "repetitions": c["repetitions"]})
    return settings
