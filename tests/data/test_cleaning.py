from finetune_compare.data.cleaning import clean_text, normalise


def test_imdb_html_breaks():
    assert clean_text("Great.<br /><br />Loved it<br/>!", "review") == "Great. Loved it !"


def test_sst_ptb_tokens():
    assert clean_text("a -LRB- good -RRB- film `` yes ''", "sentence") == 'a ( good ) film " yes "'


def test_tweets_mentions_and_links():
    assert clean_text("@bob see https://t.co/x and @ alone  ", "tweet") == "@user see http and @ alone"


def test_whitespace_and_disabled_cleaning():
    assert clean_text("  a\t\n b  ", "tweet") == "a b"
    assert clean_text("x<br />y", "review", enabled=False) == "x<br />y"


def test_normalise_ignores_case_and_spacing():
    assert normalise("Hello   World ") == normalise("hello world")
