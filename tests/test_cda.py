"""The counterfactual swapper: tricky sentences with their exact counterfactual, protected spans, word lists."""

from __future__ import annotations

import pytest

from fmaudit.cda import GENDER, GENDER_PAIRS, GENDERED_NAMES, Axis, PairFileError, load_pairs
from fmaudit.cda.wordlists import apply_case
from fmaudit.stages.cda import CdaSettings, swapper_from_settings

TRICKY = [
    # object vs possessive "her", and "his" as a pronoun
    ("I gave her the book.", "I gave him the book."),
    # indirect object before a noun phrase (the small models tag it possessive); possessive after the same verbs
    ("She gave her advice on the move.", "He gave him advice on the move."),
    ("They charged her 1000 dollars.", "They charged him 1000 dollars."),
    ("He asked her questions about it.", "She asked him questions about it."),
    ("We showed her thanks for the help.", "We showed him thanks for the help."),
    ("She gave her book to a friend.", "He gave his book to a friend."),
    ("He asked her friends to stay.", "She asked his friends to stay."),
    ("Her book is red.", "His book is red."),
    ("I thanked her and her mother.", "I thanked him and his father."),
    ("Ask her what her name is.", "Ask him what his name is."),
    ("He saw her leave.", "She saw him leave."),
    ("The book is his.", "The book is hers."),
    ("It is his to keep.", "It is hers to keep."),
    ("That is hers, not his.", "That is his, not hers."),
    ("Her father said the house was his, not hers.", "His mother said the house was hers, not his."),
    ("She gave her husband the map, and he thanked her.", "He gave his wife the map, and she thanked him."),
    ("He made her happy.", "She made him happy."),
    ("I love her dearly.", "I love him dearly."),
    ("The fault was his entirely.", "The fault was hers entirely."),
    ("His lovely wife waved.", "Her lovely husband waved."),
    ("I saw her running shoes by the door.", "I saw his running shoes by the door."),
    ("His and hers towels hung in the bathroom.", "Hers and his towels hung in the bathroom."),
    ("Her father said the house was his, and everyone in the old village knew it well.",
     "His mother said the house was hers, and everyone in the old village knew it well."),
    ("She met\nher mother at the station.", "He met\nhis father at the station."),
    # capitals and plurals
    ("HE SAID SHE WAS HIS WIFE.", "SHE SAID HE WAS HER HUSBAND."),
    ("Ladies and gentlemen, the actress thanked her husband.", "Gentlemen and ladies, the actor thanked his wife."),
    ("The waitresses told the kings.", "The waiters told the queens."),
    ("Himself, he said.", "Herself, she said."),
    # names: swapped by gender, one-to-one, surnames and word-like names left alone
    ("Michael told Jennifer that his sister liked her brother.",
     "Jennifer told Michael that her brother liked his sister."),
    ("Mr. Thomas and Mrs. Smith met John Thomas.", "Mrs. Thomas and Mr. Smith met Kimberly Thomas."),
    ("Will Smith called his mother.", "Will Smith called her father."),
    ("Will you call him?", "Will you call her?"),
    # proper nouns that look like gendered words, and ranks used as titles
    ("Mr. Prince said he would come.", "Mrs. Prince said she would come."),
    ("Rachel Prince thanked her father.", "Jeffrey Prince thanked his mother."),
    ("Queen Elizabeth met Prince Charles and the Duke of York.",
     "King Matthew met Princess Julie and the Duchess of York."),
    ("Ms. Johnson told Mr. Lee that her son would call him.", "Mr. Johnson told Mrs. Lee that his daughter would call her."),
    ("The king and queen greeted the prince.", "The queen and king greeted the princess."),
    # a gendered noun used as a verb
    ("The men man the station.", "The women man the station."),
    # URLs, e-mails, code and the PII stage's tags are never touched
    ("Visit https://example.com/his/page and write to him@his.org, he said.",
     "Visit https://example.com/his/page and write to him@his.org, she said."),
    ("See www.his-site.com or his-blog.org/her for him.", "See www.his-site.com or his-blog.org/her for her."),
    ("Run `her = his()` then ask her.", "Run `her = his()` then ask him."),
    ("<PERSON> said he met <PERSON> and her son at <EMAIL_ADDRESS>.",
     "<PERSON> said she met <PERSON> and his daughter at <EMAIL_ADDRESS>."),
    ("```\nhe = her\n```\nHe left.", "```\nhe = her\n```\nShe left."),
    # nothing to swap
    ("The committee met on Tuesday.", "The committee met on Tuesday."),
]


@pytest.fixture(scope="module")
def swapper():
    return swapper_from_settings(CdaSettings())


def test_tricky_sentences(swapper):
    got = [cf.text for cf in swapper.counterfactuals([s for s, _ in TRICKY])]
    wrong = [(s, want, g) for (s, want), g in zip(TRICKY, got) if g != want]
    assert not wrong, "\n".join(f"{s!r}\n  want {w!r}\n  got  {g!r}" for s, w, g in wrong)


def test_counterfactual_of_counterfactual_is_original(swapper):
    for s in ["She told her brother that he owed her.", "Michael and his wife met the queen."]:
        assert swapper.counterfactual(swapper.counterfactual(s).text).text == s


def test_side_counts_flip_with_the_swaps(swapper):
    cf = swapper.counterfactual("He and his son met her.")
    assert cf.before[GENDER] == [3, 1]
    assert cf.after()[GENDER] == [1, 3]
    assert sorted(s.pair for s in cf.swaps) == ["gender:he>she", "gender:her>him", "gender:his>her",
                                                "gender:son>daughter"]


def test_long_text_without_sentence_ends_is_parsed_in_windows(swapper):
    filler = "and then the committee went on talking about the budget " * 40
    text = f"{filler} her book {filler} gave it to her {filler}"
    cf = swapper.counterfactual(text)
    assert "his book" in cf.text and "to him" in cf.text


def test_tags_only_mode_still_resolves_her():
    swapper = swapper_from_settings(CdaSettings(parser=False, names=False))
    assert swapper.counterfactual("I thanked her and her mother.").text == "I thanked him and his father."


def test_user_axis_from_pair_file(tmp_path):
    pairs = tmp_path / "religion.tsv"
    pairs.write_text("# religion pairs\nchurch\tmosque\nBible\tQuran\nChristian school\tMuslim school\n")
    settings = CdaSettings(gender=False, names=False, axes=[{"name": "religion", "path": str(pairs),
                                                             "sides": ["christian", "muslim"]}])
    swapper = swapper_from_settings(settings)
    cf = swapper.counterfactual("The Church ran a Christian  school; the mosque kept a Quran at church.example.org.")
    assert cf.text == "The Mosque ran a Muslim school; the church kept a Bible at church.example.org."
    assert cf.before == {"religion": [2, 2]}


def test_axes_combine_in_one_counterfactual(tmp_path):
    pairs = tmp_path / "nat.tsv"
    pairs.write_text("French\tGerman\n")
    swapper = swapper_from_settings(CdaSettings(names=False, axes=[{"name": "nationality", "path": str(pairs)}]))
    assert swapper.counterfactual("The French actor met his German wife.").text == \
        "The German actress met her French husband."


@pytest.mark.parametrize("content, message", [
    ("he\n", ":1: expected"),
    ("# c\nhe\tshe\tverb\n", ":2: unknown kind 'verb'"),
    ("he\tshe\tnoun\tsideways\n", ":1: unknown direction"),
    ("he\the\n", "its own counterpart"),
    ("# only a comment\n", "holds no pairs"),
])
def test_bad_pair_file_names_file_and_line(tmp_path, content, message):
    path = tmp_path / f"bad{abs(hash(content))}.tsv"
    path.write_text(content)
    with pytest.raises(PairFileError, match=message) as err:
        load_pairs(path)
    assert str(path) in str(err.value)


def test_shipped_lists_are_consistent():
    gender = load_pairs(GENDER_PAIRS)
    assert gender.lookup("her").target == "him" and gender.lookup("hers").target == "his"
    assert gender.lookup("ms").target == "mr" and gender.lookup("mr").target == "mrs"
    assert gender.lookup("host") is None and gender.lookup("hostess").target == "host"
    names = load_pairs(GENDERED_NAMES, True)
    for word, term in names.terms.items():
        assert names.lookup(term.target).target == word, f"{word} -> {term.target} is not one-to-one"
    assert names.lookup("Will") is None and names.lookup("Grace") is None


def test_apply_case():
    assert [apply_case(s, "she") for s in ("he", "He", "HE")] == ["she", "She", "SHE"]
    assert apply_case("John", "Kimberly") == "Kimberly"


def test_axis_pattern_prefers_longest_phrase(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("new york\tparis\nnew\told\n")
    axis = Axis("city", ("a", "b"), load_pairs(path))
    assert axis.pattern().findall("New  York is new") == ["New  York", "new"]
