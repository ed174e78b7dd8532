"""The shared text helpers: sentences, words, content words, numbers, dates, names."""

from __future__ import annotations

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from llmvigil.evaluators.text import (
    STOP_WORDS,
    capitalised_names,
    content_words,
    dates,
    fold,
    negations,
    numbers,
    split_sentences,
    stem,
    stems,
    unique,
    word_count,
    words,
    years,
)


class TestSplitSentences:
    def test_splits_on_terminal_punctuation(self):
        assert split_sentences("It opened in 1937. Is it long? Yes!") == [
            "It opened in 1937.",
            "Is it long?",
            "Yes!",
        ]

    def test_keeps_decimals_initials_and_abbreviations_inside_a_sentence(self):
        text = "J. R. R. Tolkien met Dr. Smith on U.S. Highway 60. The road is 2.7 km long."
        assert split_sentences(text) == [
            "J. R. R. Tolkien met Dr. Smith on U.S. Highway 60.",
            "The road is 2.7 km long.",
        ]

    def test_splits_passages_glued_without_a_space(self):
        text = "It was published in the 19th century.First for Women is a magazine."
        assert split_sentences(text) == [
            "It was published in the 19th century.",
            "First for Women is a magazine.",
        ]

    def test_list_items_and_paragraphs_are_sentences(self):
        text = "Steps:\n- open Settings\n- choose Security\n\nThen save."
        assert split_sentences(text) == ["Steps:", "open Settings", "choose Security", "Then save."]

    def test_empty_text_has_no_sentences(self):
        assert split_sentences("") == []
        assert split_sentences("   ") == []


class TestWords:
    def test_words_keep_case_apostrophes_and_numbers(self):
        assert words("Nixon's one-time fee: $4.99 (1,200 m)") == [
            "Nixon's",
            "one",
            "time",
            "fee",
            "4.99",
            "1,200",
            "m",
        ]

    def test_word_count(self):
        assert word_count("Delhi") == 1
        assert word_count("Mumbai, the financial capital of India.") == 6

    def test_content_words_drop_scikit_learn_stop_words(self):
        assert STOP_WORDS >= ENGLISH_STOP_WORDS
        assert content_words("The bridge opened to traffic in 1937.") == [
            "bridge",
            "opened",
            "traffic",
            "1937",
        ]

    def test_content_words_fold_case_accents_possessives_and_contractions(self):
        assert content_words("Rhöner Nixon's") == ["rhoner", "nixon"]
        assert content_words("We'll email it, don't worry, it's free") == ["email", "worry", "free"]
        assert fold("Café ÉCOLE") == "cafe ecole"

    def test_unique_keeps_first_occurrence_order(self):
        assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


class TestStem:
    def test_inflections_share_a_stem(self):
        assert stem("carried") == stem("carries") == stem("carry")
        assert stem("opens") == stem("opened") == stem("open")
        assert stem("named") == stem("name")

    def test_different_words_keep_different_stems(self):
        assert stem("heated") != stem("unheated")
        assert stem("Delhi") != stem("Mumbai")

    def test_numbers_are_unchanged(self):
        assert stem("1937") == "1937"

    def test_stems_of_a_text(self):
        assert stems("Codes expire after 10 minutes.") == {stem("codes"), "expir", "10", "minut"}


class TestNumbers:
    def test_digits_and_number_words(self):
        assert numbers("twenty-five days, $4.99 and 1,200 m") == [25.0, 4.99, 1200.0]

    def test_scales_and_suffixes(self):
        assert numbers("3 million, 1.5bn, 10k, 3rd, third, two hundred") == [
            3e6,
            1.5e9,
            1e4,
            3.0,
            3.0,
            200.0,
        ]

    def test_ranges_give_both_ends(self):
        assert numbers("Arthur's Magazine (1844–1846)") == [1844.0, 1846.0]

    def test_ambiguous_words_count_only_before_a_content_word(self):
        text = "It is one of the best; he was born first; one day later"
        assert numbers(text) == [1.0, 1.0, 1.0]
        assert numbers(text, ambiguous=False) == [1.0]

    def test_years(self):
        assert years("Founded in 1874, rebuilt 2003, room 404") == [1874, 2003]


class TestDates:
    def test_months_weekdays_and_years_are_normalised(self):
        assert dates("On Monday, March 2, 1991") == {"weekday:0", "month:3", "year:1991"}
        assert dates("open Mon to Fri") == {"weekday:0", "weekday:4"}
        assert dates("only on Mondays") == {"weekday:0"}

    def test_may_is_a_month_only_next_to_a_number(self):
        assert dates("You may cancel at any time.") == set()
        assert dates("It opens on 3 May.") == {"month:5"}


class TestNames:
    def test_runs_of_capitalised_words(self):
        text = "President Richard Nixon met staff of the Bank of America in Paris."
        assert capitalised_names(text) == ["President Richard Nixon", "Bank of America", "Paris"]

    def test_sentence_initial_words_and_stop_words_are_not_names(self):
        assert capitalised_names("Yes, water is fine.") == []
        assert capitalised_names("The Oberoi Group is based in Delhi.") == ["Oberoi Group", "Delhi"]
        assert capitalised_names("I think so.") == []

    def test_a_one_word_answer_is_a_name(self):
        assert capitalised_names("Delhi") == ["Delhi"]


def test_negations_count_negation_words_and_contractions():
    assert negations("Codes never expire.") == 1
    assert negations("You can't and won't; it is not free.") == 3
    assert negations("Codes expire after 10 minutes.") == 0
