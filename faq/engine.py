"""The FAQ matching engine: ranks entries for a question and decides what to do with it.

How a question is ranked (see README "FAQ engine" for the measurements behind it):

1. Four term channels, each a BM25F-style weighted term model over the entry's fields
   (question, alternative phrasings, keywords, answer), each field with its own weight and
   length normalisation:
   - words: Sudachi normalised forms with synonyms mapped (忘れてしもた → 忘れる); parts of
     a compound (住民, 票 of 住民票) count, but weigh less in a question than whole words;
   - pairs: two content words near each other (暗証番号+忘れる), which favours the entry
     that uses them together over entries that mention each somewhere;
   - reading: kana bigrams of the reading, for hiragana-only questions and kana typos;
   - surface: character bigrams of the folded text, for unknown words and kanji variants
     (an answer's count half: see `RankingParameters.answer_surface_share`).
   A channel's score is the IDF-weighted share of the question's terms the entry covers,
   so it lies in [0, 1): words the FAQ has never seen (天気, ゴミ) count against every entry.
2. The best candidates are re-scored with rapidfuzz against each phrasing of the entry
   (question and alternatives; in an entry without alternatives, also the reading of its
   answer's first sentence), which rewards near-identical wording and absorbs typos.
   The ranking score is the weighted mean of these signals.
   Then the best five are reordered by what is asked (cost, place, time, what to bring, how,
   ...; `faq.normalize.ask_kinds`): siblings on one topic share their words and differ in
   this. Only their order changes, not the candidates or the scores of the ranks.
   A long question of several sentences is ranked once more with the words of its earlier
   sentences weighing less (the request usually comes last); that ranking gives the order,
   the plain one the scores of the ranks (`RankingParameters.earlier_sentence_weight`).
3. Confidence: all of a question's scores are raised by the same amount, growing with the
   evidence behind the best entry (the IDF mass of the question's words it matches, in units
   of the rarest word; IDF over fields of entries, so the FAQ's topic words, found in every
   field, count less than a question's own specifics): a long question that matches several
   rare words is more certain than a short one that matches a single word, though its share
   of matched words is lower. The order is unchanged; the scores then decide the outcome
   with `MatchThresholds`: answered (confident and clearly ahead of the runner-up),
   suggested (plausible: let the resident pick), fallback.

The index is updated in place when one entry changes (`upsert`, `remove`); `rebuild` loads
everything, e.g. from the database at start-up. The engine is not thread-safe: use it from
one event loop (its methods are synchronous and fast).
"""

from __future__ import annotations

import gc
import itertools
import math
import re
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from faq.normalize import (
    MAX_ANALYZED_CHARS,
    Analysis,
    TextNormalizer,
    ask_kinds,
    char_ngrams,
    final_sentence,
    first_sentence,
    is_kana,
    kana_fold,
)
from faq.thresholds import MatchThresholds
from faq.types import Candidate, FaqDocument, MatchResult
from faq.wordvectors import WordVectors

__all__ = ["FaqEngine", "FieldWeights", "MatchThresholds", "RankingParameters"]

FloatArray = npt.NDArray[np.float32]

FIELDS = ("question", "alternatives", "keywords", "answer")
# Short kana strings match grammar by accident (いない is 以内 and "is not"; どうい is 同意 and
# part of どういう): a reading must be this long, unless it is a whole run of kana by itself.
MIN_READING_LENGTH = 4
MIN_WHOLE_RUN_LENGTH = 3
# The words-channel term of a negated predicate (see `Analysis.negated`); no text yields it.
NEGATION_TERM = "\u00acない"
# Hiragana runs only: katakana is mostly loanwords, which Sudachi already knows.
_KANA_RUN_RE = re.compile(r"[\u3041-\u3096ー]{3,}")
# Stretches (start, end) of a question's folded text (see `FaqEngine._live_words`).
Blocked = tuple[tuple[int, int], ...]
# Particles that may stand between words read end to end in a kana run (see `_kana_tiles`).
_PARTICLES = frozenset("をがはにでのともへや")


@dataclass(frozen=True, slots=True)
class FieldWeights:
    """How much a term found in each field counts, and how strongly length dilutes it (b)."""

    weight: dict[str, float]
    length_norm: dict[str, float]
    # The answer's weight in an entry that has no alternative phrasings (None = as above).
    answer_without_alternatives: float | None = None


@dataclass(frozen=True, slots=True)
class RankingParameters:
    """Every knob of the ranking in one place; defaults chosen on the development set."""

    k1: float = 1.2
    fields: FieldWeights = field(
        default_factory=lambda: FieldWeights(
            weight={"question": 3.0, "alternatives": 2.0, "keywords": 2.0, "answer": 0.6},
            length_norm={"question": 0.5, "alternatives": 0.5, "keywords": 0.0, "answer": 0.75},
            # An entry without alternative phrasings (most municipal FAQ files) has only its
            # question and answer to be found by; its answer counts more. On the development
            # questions against the curated FAQ stripped of alternatives and keywords plus
            # 1,000 bare synthetic entries: hit@1/hit@5 0.639/0.872 -> 0.658/0.888; the FAQ
            # with alternatives is unchanged.
            answer_without_alternatives=1.0,
        )
    )
    channel_weight: dict[str, float] = field(
        default_factory=lambda: {"words": 0.4, "reading": 0.3, "surface": 0.15, "pairs": 0.1}
    )
    # The answer's character bigrams (surface channel) count this share of the answer's
    # weight; 0 leaves answers out of that channel. They reach what Sudachi splits or spells
    # differently in the question and the answer (申込 / 申し込み, unknown words, kanji
    # variants), which an FAQ without alternative phrasings has no other way to meet.
    # Measured with the surface channel weight raised from 0.05 to 0.1 together (neither
    # alone helps); hit@1/hit@5 before → after: tuning part 0.892/0.985 → 0.904/0.988,
    # independent part 0.895/0.995 → 0.895/0.995, stand-in (FAQ stripped of alternatives
    # and keywords, plus 1,000 synthetic entries; all questions) 0.677/0.890 → 0.682/0.893,
    # its independent questions alone 0.671/0.904 → 0.676/0.909; fallback recall and wrong
    # answers unchanged in all of them. Costs: about 2.8 times the surface postings; build
    # time and query latency unchanged within noise.
    answer_surface_share: float = 0.5
    fuzzy_weight: float = 0.25
    # How many of the first stage's best entries are re-scored against their phrasings.
    # 40 → 20 (with the last-sentence rule below): hit@1, fallback recall and wrong answers
    # unchanged in every view (tuning part, independent part, stand-in with all questions
    # and with the independent ones, also with 1,700 synthetic entries instead of 1,000);
    # hit@5 stand-in 0.896 → 0.899 and 0.887 → 0.890 with 1,700 (fewer distant entries
    # lifted into the top 5 by a near-identical phrasing), the rest unchanged; 15 loses
    # hit@5 (tuning part 0.988 → 0.985, stand-in independent 0.913 → 0.909). Less work per
    # question: the phrasing comparison is the costliest step after the first stage.
    rerank_depth: int = 20
    # In an entry without alternative phrasings, the reading of its answer's first sentence
    # (which usually restates the topic: 写真は次の条件に合うものを使ってください) is one
    # more phrasing for the re-rank, compared by reading only (`_nearest_phrasings`).
    # Entries with alternatives are left alone: on the curated FAQ the same phrasing for
    # every entry loses a tuning question. Development set, hit@1 before → after
    # (questions): stand-in (FAQ stripped of alternatives and keywords plus 1,000 synthetic
    # entries; all questions) 0.685 → 0.700 (429 → 438; 11 better, 2 worse), its
    # independent questions alone 0.680 → 0.689 (149 → 151); with 1,700 synthetic entries
    # 0.682 → 0.696 (427 → 436) and 0.680 → 0.689; the FAQ stripped of alternatives only,
    # without synthetic entries, 0.768 → 0.776. hit@5 stand-in 0.899 → 0.898, its
    # independent questions 0.913 → 0.909 (one question; with 1,700: 0.893 → 0.895 and
    # 0.904 → 0.900); fallback recall and wrong answers unchanged; the curated FAQ (tuning
    # and independent parts) unchanged, as it has alternatives everywhere. Dropped (stand-in
    # hit@1 questions): the first sentence's words too, by the IDF overlap (436), its words
    # only (427), the first line instead of the first sentence (434), the first two
    # sentences (436, fallback recall 0.893 → 0.887), the similarity discounted ×0.9 (434).
    # Other ways of counting the answer, measured and dropped (whole curated FAQ / stand-in,
    # hit@1 questions, from 566 / 429): scoring it by its best passage (the words channel
    # mixed half and half with a max over passages of one sentence: 564 / 417; windows of two
    # sentences: 564 / 419, of three: 564 / 418; a quarter of two: 565 / 422; the max alone:
    # 560 / 411); its first sentence counted once more in the words channel (×0.3 of the
    # answer's weight: 565 / 426; ×1.0: 564 / 423); an answer word's count saturated sooner
    # (tf·(1+k)/(k+tf) before the BM25F sum; k = 2: 565 / 420, k = 0.5: 563 / 417) or capped
    # at 1 (560 / 408), at 2 (564 / 426). An answer that repeats the question's words is
    # about them more often than not; the whole answer as one bag of words is the best of
    # these. (Its kana bigrams in the reading channel matter too: without them 558 / 407.)
    answer_lead_phrasing: bool = True
    # A question's term that is only a part of one of its compounds (保険 of 保険証) counts this
    # share of its IDF, so that one compound does not weigh as much as three words.
    part_weight: float = 0.3
    # Word pairs: two content words within this many words of each other (either order).
    pair_window: int = 2
    # A question that negates a predicate (使えない, 届かへん) also looks for entries asked
    # that way (see `Analysis.negated`). Development set, baseline → with: hit@1/hit@5 whole
    # 0.867/0.984 → 0.869/0.989, independent part 0.877/0.991 → 0.877/0.995, stand-in FAQ
    # without phrasings 0.658/0.888 → 0.660/0.890.
    negation: bool = True
    # What is asked (cost, place, time, what to bring, ...; see `faq.normalize.ask_kinds`):
    # siblings on one topic (the fee, the place, the hours of one service) share their words
    # and differ in this. Among the best `ask_depth` candidates, an entry asked the same kind
    # of thing as the question gains `ask_weight` times the share of the question's kinds it
    # has; then only their order changes (see `_by_ask_kind`). Chosen on the tuning part of
    # the development set; hit@1 baseline → with: tuning 0.865 → 0.882, independent part
    # 0.877 → 0.890, stand-in FAQ without phrasings 0.660 → 0.676; hit@5, fallback recall
    # and wrong answers unchanged.
    ask_weight: float = 0.05
    # The same for an entry with alternative phrasings (言い換え): its ask kinds are the union
    # over several ways of asking, which tell what it answers better than one question can,
    # so they may decide more. Chosen on the tuning part and the stand-in (FAQ stripped of
    # alternatives and keywords plus 1,000 synthetic entries), questions at hit@1, 0.05 →
    # 0.07: tuning part 370 → 372, independent part 201 → 203 (5 better, 1 worse in all);
    # 0.06–0.08 the same within one question, 0.1 and above lose again. The stand-in, which
    # has no alternatives, is unchanged by construction; there, a higher weight for every
    # entry loses (0.06: 446 → 443), as one question's ask kinds are a thin sample.
    ask_weight_with_alternatives: float = 0.07
    ask_depth: int = 5
    # A long question of several sentences usually tells its story first and asks last
    # (…止めてもらったカードが家で見つかりました。再び使う手続きを教えてください): in a
    # question of at least `final_sentence_min_chars` characters, the words found only in
    # sentences before the last (split on 。！？ and line breaks; see
    # `faq.normalize.final_sentence`) count this share of their IDF. The re-weighted ranking
    # decides the order only; the scores stay with the ranks, so confidence, fallback and
    # wrong answers are the plain ranking's. Words channel only: the same weight on pairs,
    # reading and surface changed nothing measurable. Development set, hit@1 before →
    # after (questions): tuning part 0.904 → 0.904 (368 → 368), independent part
    # 0.895 → 0.904 (196 → 198), stand-in (FAQ stripped of alternatives and keywords plus
    # 1,000 synthetic entries; all questions) 0.682 → 0.685 (427 → 429), its independent
    # questions alone 0.676 → 0.680 (148 → 149); hit@5 stand-in 0.893 → 0.896 and its
    # independent questions 0.909 → 0.913, the parts unchanged; fallback recall, wrong
    # answers and the not-fallback share (at the thresholds and at equal fallback recall)
    # unchanged in all four. Without the length condition the tuning part and the
    # stand-in each lose 1 (short questions whose second sentence only goes on with the
    # first: 詐欺の電話で番号を言ってしまいました。番号を変えられますか); 30 to 40 characters
    # are equal, 50 loses an independent question. Weights 0.7 and 0.8 are equal, 0.9 gains
    # less. Splitting at clause endings too (〜けど, 〜が、) gives the independent part one
    # fewer. Cost: a second ranking pass for the questions the rule applies to (43 of the
    # 785 development questions; `make eval` latency p50 unchanged, 0.8 ms, p99 1.6 → 2.3 ms).
    earlier_sentence_weight: float = 0.8
    final_sentence_min_chars: int = 40
    # Confidence: how much the evidence (the rare-word mass the best entry matches) adds to the
    # scores, and the evidence at which it gives half of that (see `rank`).
    evidence_weight: float = 0.5
    evidence_scale: float = 1.0
    # The evidence's IDF counts fields, not entries: each field of each entry (question,
    # alternatives, keywords, answer) is one unit of the words' document frequency. A word
    # found in every field of the entries that have it (マイナンバーカード in a FAQ about
    # the card) is the FAQ's topic rather than what a question is about, and counts less;
    # one found in a single field of its entries counts more. Only the confidence moves (the
    # same lift for every candidate), not the ranking: the first stage's IDF over phrasings
    # or fields instead of entries loses hit@1 (whole curated FAQ 571 → 563 and 568
    # questions). Development set, at the thresholds as they are, before → after:
    # fallback recall whole 0.906 → 0.912, tuning part 0.922 → 0.922, independent part
    # 0.860 → 0.884, stand-in (FAQ stripped of alternatives and keywords plus 1,000
    # synthetic entries; all questions) 0.893 → 0.893, its independent questions
    # 0.930 → 0.930; wrong answers unchanged in all five (0.006, 0.007, 0.005, 0.003,
    # 0.009); answerable questions not sent to fallback 0.690 → 0.720, 0.747 → 0.769,
    # 0.584 → 0.630, 0.431 → 0.438, 0.315 → 0.324; hit@1 and hit@5 unchanged. ROC AUC of
    # the best score, answerable against out-of-scope: 0.916 → 0.923, 0.931 → 0.936,
    # 0.879 → 0.889, 0.768 → 0.774, 0.717 → 0.723 (with 1,700 synthetic entries: stand-in
    # 0.774 → 0.779, outcomes unchanged). Not-fallback share at equal fallback recall rises
    # too (whole, at 0.90: 0.690 → 0.730), except the stand-in's independent questions at
    # 0.85 (0.384 → 0.374). The same holds with evidence weight 0.4 or 0.6 and scale 0.8 or
    # 1.25 (each against the entry IDF at the same setting: fallback recall equal or higher,
    # wrong answers equal, not-fallback share higher in all five), and with other units
    # (each phrasing, keywords and answer: AUC whole 0.925; phrasings and answer: 0.924),
    # though at the present thresholds those cost the tuning part one or two out-of-scope
    # questions. Cost: one look-up per question word in the best entry's postings.
    evidence_over_fields: bool = True
    # Questions typed in kana: where FAQ words found by reading cover the kana (a whole run,
    # a stretch of one, or a run read end to end as words with particles between them,
    # すまほ|を; see `_kana_tiles`), Sudachi's kana pieces of it (こう, きん of
    # こうきんうけとりこうざ) and words of it the FAQ lacks (糞, 質 of ふんしつ) are dropped
    # from the question (see `_without_kana_fragments`): they met the same junk in the FAQ's
    # kana phrasings. Development set, hit@1 before → after (questions): whole 0.904 → 0.909
    # (566 → 569), tuning part 0.904 → 0.909 (368 → 370), independent part 0.904 → 0.909
    # (198 → 199), stand-in (FAQ stripped of alternatives and keywords plus 1,000 synthetic
    # entries; all questions) 0.685 → 0.687 (429 → 430), its independent questions alone
    # 0.680 → 0.680 (149); the 137 questions typed in hiragana 128 → 131, and on the
    # stand-in 103 → 104. hit@5, fallback recall and wrong answers unchanged in all; the
    # not-fallback share rises (whole 0.684 → 0.690, stand-in 0.390 → 0.422). Dropping
    # without reading runs end to end loses one stand-in independent question (ふざい|つうち
    # was only covered by the end-to-end reading); that reading alone changes no hit@1.
    drop_kana_fragments: bool = True
    # Verbs and adjectives typed in kana in a conjugated form (とれない, おくれない, かえたい,
    # もってない): the readings of the FAQ's predicates' common conjugated forms (by grammar
    # rules, see `conjugated_readings`) are looked up in the question's kana runs like their
    # dictionary forms, but only where no word's own reading matches, only four letters or
    # longer (でよう, うてる, かけて in mixed text are grammar), and not over a stretch Sudachi
    # or the synonym table read as a word the FAQ knows (はじめて is 初めて, ひっこし 引っ越し).
    # Development set, before → after: hit@1 whole 571 → 571 of 626, tuning part 370 → 370,
    # independent part 201 → 201, stand-in 438 → 439 (かわった → 変わる), its independent
    # questions 151 → 151; hit@5 620 → 620 and stand-in 561 → 562; fallback recall and wrong
    # answers unchanged in all five; not-fallback share whole 0.720 → 0.724, tuning part
    # 0.769 → 0.774, independent part 0.630 → 0.630, stand-in 0.438 → 0.446, its independent
    # questions 0.324 → 0.329. The 138 questions typed in hiragana: hit@1 134 → 134, stand-in
    # 109 → 109. With three-letter forms allowed the whole set gains one more (572, tuning
    # part 371), by accident: でよう → 出る, うてる → 打つ in テレビでよう言うてる.
    kana_conjugations: bool = True
    # Pretrained word vectors (chiVe, from the ja_ginza wheel; see `faq.wordvectors`; only
    # when the engine was given a table) for the question's words the FAQ has never seen:
    # each is stood in for by its nearest FAQ words (cosine ≥ `oov_threshold`, at most
    # `oov_neighbours`), each credited in the words channel with this share of cosine ×
    # IDF (the smaller of the two words' IDF), without adding to the question's total
    # (ひったくり → 盗難, 国保 → 健康保険, できあがり → 出来上がる). The stand-ins decide the
    # order only: the scores stay with the ranks (the plain ranking's), so confidence,
    # fallback and wrong answers do not move. Development set, hit@1 (hit@5) questions
    # without → 0.5 (0.25 / 1.0): whole 571 (620) → 571 (620) (572 / 571), tuning part 370
    # → 370 (370 / 369), independent part 201 → 201 (202 / 202); stand-in (FAQ stripped of
    # 言い換え and keywords plus 1,000 synthetic entries; all questions) 440 (562) → 446 (567)
    # (443 / 452), its independent questions 151 (198) → 155 (200) (153 / 157); with 1,700
    # synthetic entries 436 (558) → 442 (562), the FAQ without 言い換え only 485 → 485 (0.75:
    # 488); fallback recall, wrong answers and not-fallback share unchanged in all. An FAQ
    # with many 言い換え has few words it has never seen, so it gains little; a municipal FAQ
    # file without them gains most. Cost: a second ranking pass for questions with such
    # words; the FAQ's word matrix (made at the first question after a change).
    oov_expansion: float = 0.5
    oov_threshold: float = 0.6
    oov_neighbours: int = 3


# Posting lists up to this long are gathered and summed in one step (see `_Channel.score`).
_GATHER_MAX = 256


def _scores_kept(
    ranked: list[tuple[float, str, int]], reordered: list[tuple[float, str, int]]
) -> list[tuple[float, str, int]]:
    """The entries of `reordered` in its order with the scores of `ranked`'s ranks.

    Rules that only decide the order (what is asked, earlier sentences, word-vector
    stand-ins) keep the plain ranking's scores, so confidence and the thresholds keep their
    meaning.
    """
    return [
        (score, entry_id, slot)
        for (score, _id, _slot), (_score, entry_id, slot) in zip(ranked, reordered, strict=False)
    ]


def _idf(df: int, units: int) -> float:
    """BM25's IDF of a term found in df of the units (entries, or fields of entries)."""
    n = max(units, 1)
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


class _Channel:
    """An inverted index of one kind of term, with BM25F-weighted, saturated term weights.

    Postings are compact arrays (doc slot, saturated weight), appended to; replaced or removed
    entries leave dead slots that the alive mask hides until the next rebuild.
    """

    __slots__ = ("_idf_cache", "doc_freq", "k1", "postings")

    def __init__(self, k1: float) -> None:
        self.k1 = k1
        self.postings: dict[str, tuple[array[int], array[float]]] = {}
        self.doc_freq: Counter[str] = Counter()
        # idf by term, with the live count it was computed for; cleared when df changes.
        self._idf_cache: dict[str, tuple[int, float]] = {}

    def add(self, slot: int, weighted_tf: dict[str, float]) -> None:
        self._idf_cache.clear()
        postings, k1 = self.postings, self.k1
        for term, wtf in weighted_tf.items():
            entry = postings.get(term)
            if entry is None:
                entry = postings[term] = (array("i"), array("f"))
            entry[0].append(slot)
            entry[1].append(wtf / (k1 + wtf))
        self.doc_freq.update(weighted_tf.keys())  # counted in C: this loop runs per term

    def extend(self, term: str, slots: bytes, weights: bytes) -> None:
        """Append postings of one term made elsewhere (a rebuild's `_BulkPostings`): slots
        as int32 and saturated weights as float32 bytes, slots after the term's last."""
        self._idf_cache.clear()
        entry = self.postings.get(term)
        if entry is None:
            entry = self.postings[term] = (array("i"), array("f"))
        entry[0].frombytes(slots)
        entry[1].frombytes(weights)
        self.doc_freq[term] += len(slots) // 4

    def forget(self, terms: Iterable[str]) -> None:
        self._idf_cache.clear()
        for term in terms:
            self.doc_freq[term] -= 1
            if self.doc_freq[term] <= 0:
                del self.doc_freq[term]

    def idf(self, term: str, live_docs: int) -> float:
        cached = self._idf_cache.get(term)
        if cached is not None and cached[0] == live_docs:
            return cached[1]
        value = _idf(self.doc_freq.get(term, 0), live_docs)
        self._idf_cache[term] = (live_docs, value)
        return value

    def weight_at(self, term: str, slot: int) -> float:
        """The term's saturated weight in one slot (0 if absent); slots are ascending."""
        entry = self.postings.get(term)
        if entry is None or not self.doc_freq.get(term):
            return 0.0
        slots = entry[0]
        index = bisect_left(slots, slot)
        if index < len(slots) and slots[index] == slot:
            return entry[1][index]
        return 0.0

    def score(
        self,
        query_terms: Iterable[str],
        live_docs: int,
        size: int,
        factors: dict[str, float] | None = None,
        extra: dict[str, float] | None = None,
    ) -> FloatArray:
        """IDF-weighted coverage of the query's terms by each slot, in [0, 1).

        `factors` scales the weight of some query terms (default 1).
        """
        total = 0.0
        scores = np.zeros(size, dtype=np.float32)
        slot_lists: list[array[int]] = []
        weight_lists: list[array[float]] = []
        term_idfs: list[float] = []
        lengths: list[int] = []
        # In the question's order, not a set's: sums of floats then do not depend on the
        # hash seed (the same ranking in every process).
        for term in dict.fromkeys(query_terms):
            idf = self.idf(term, live_docs)
            if factors:
                idf *= factors.get(term, 1.0)
            total += idf
            entry = self.postings.get(term)
            if entry is None or not self.doc_freq.get(term):
                continue
            length = len(entry[0])
            if length > _GATHER_MAX:
                # A long list (a common word of a big FAQ): added in place, not copied.
                slots = np.frombuffer(entry[0], dtype=np.int32)
                weights = np.frombuffer(entry[1], dtype=np.float32)
                scores[slots] += np.float32(idf) * weights
                continue
            slot_lists.append(entry[0])
            weight_lists.append(entry[1])
            term_idfs.append(idf)
            lengths.append(length)
        if slot_lists:
            # The short lists all at once: one weighted bincount instead of a few NumPy calls
            # per term, whose fixed cost dominated for the hundred-odd terms of one question.
            slots = np.frombuffer(b"".join(slot_lists), dtype=np.int32)
            weights = np.frombuffer(b"".join(weight_lists), dtype=np.float32) * np.repeat(
                np.asarray(term_idfs, dtype=np.float32), lengths
            )
            scores += np.bincount(slots, weights=weights, minlength=size).astype(np.float32)
        if extra:
            # Stand-in terms (see `RankingParameters.oov_expansion`): credited with the given
            # IDF weight, without adding to the question's total.
            for term, weight in extra.items():
                entry = self.postings.get(term)
                if entry is None or not self.doc_freq.get(term):
                    continue
                slots = np.frombuffer(entry[0], dtype=np.int32)  # ascending, no repeats
                weights = np.frombuffer(entry[1], dtype=np.float32)
                scores[slots] += np.float32(weight) * weights
        if total > 0:
            scores /= np.float32(total)
        return scores


class _Grams(Collection[str]):
    """The terms of the reading and surface channels of one field: the character bigrams
    of some texts (`char_ngrams` of each, one text after another), kept as the texts.

    A rebuild counts them without making a string of each (see `_BulkPostings`); they are
    nine in ten of an FAQ's terms. The texts come from `kana_fold`, so they hold no NUL.
    """

    __slots__ = ("_length", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._length = sum(max(len(text) - 1, 1) for text in texts if text)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[str]:
        for text in self.texts:
            yield from char_ngrams(text)

    def __contains__(self, term: object) -> bool:
        return any(term == gram for gram in self)


# A character that no text of a gram channel holds (see `_Grams`): it separates the texts.
_SEPARATOR = "\x00"
# Term codes of the gram channels: first letter << 21 | second letter; a text of one letter
# (its own term) has this for a second letter, which is no code point.
_LETTER_BITS = 21
_NO_LETTER = (1 << _LETTER_BITS) - 1


class _BulkPostings:
    """The postings of one channel for a whole rebuild, built from the entries' terms in a
    few vectorised steps, exactly as `_Channel.add` builds them entry by entry: the same
    weights, postings in slot order, terms (and document frequencies) in order of first
    occurrence.

    Terms are gathered in runs: a run is one field of one entry, with its slot, its place in
    `FIELDS` and its factor (field weight over length norm). A list of terms is gathered
    as term numbers (in order of first occurrence), a gram channel's `_Grams` as its texts,
    whose bigrams are coded from their letters (`_gram_codes`) when the runs are added to
    the postings (`flush`). That happens whenever the gathered runs hold `FLUSH_TOKENS`
    terms and a new entry begins, so the memory this needs does not grow with the FAQ.
    """

    __slots__ = (
        "_channel",
        "_factors",
        "_fields",
        "_gathered",
        "_grams",
        "_lengths",
        "_numbers",
        "_slots",
        "_terms",
        "_texts",
        "_tokens",
    )

    # Peak RSS of `madoguchi faq bench` (main: 261 MB at 2,000 entries, 428 MB at 20,000):
    # 2^18 terms 263 / 460 MB, 2^16 248 / 420 MB, for a build about 2% slower.
    FLUSH_TOKENS = 1 << 16

    def __init__(self, channel: _Channel, *, grams: bool) -> None:
        self._channel = channel
        self._grams = grams
        # A term's number: how many distinct terms occurred before its first occurrence.
        self._numbers: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        self._terms: list[str] = []  # the terms by number (lists of terms)
        self._tokens: list[int] = []  # term numbers (lists of terms)
        self._texts: list[str] = []  # texts (gram channels), each run's one after another
        self._gathered = 0  # terms gathered since the last flush
        self._slots: list[int] = []
        self._fields: list[int] = []
        self._factors: list[float] = []
        self._lengths: list[int] = []  # terms in each run (texts, for a gram channel)

    def add(self, slot: int, field_index: int, factor: float, terms: Collection[str]) -> None:
        """One run; runs must come in slot order and, within an entry, in field order."""
        if self._gathered >= self.FLUSH_TOKENS and slot != self._slots[-1]:
            self.flush()
        self._slots.append(slot)
        self._fields.append(field_index)
        self._factors.append(factor)
        self._gathered += len(terms)
        if self._grams:
            assert isinstance(terms, _Grams)
            self._lengths.append(len(terms.texts))
            self._texts += terms.texts
        else:
            self._lengths.append(len(terms))
            self._tokens += map(self._numbers.__getitem__, terms)

    def _gram_codes(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The codes of the gathered texts' bigrams, in order, and the run of each."""
        texts = self._texts
        # Each text followed by a separator, one separator before all: a letter begins a
        # bigram if the next is no separator, and is a term of its own if it stands alone.
        joined = _SEPARATOR + _SEPARATOR.join(texts) + _SEPARATOR
        assert joined.count(_SEPARATOR) == len(texts) + 1
        letters = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        here, after, before = letters[1:-1], letters[2:], letters[:-2]
        bigram = (here != 0) & (after != 0)
        alone = (here != 0) & (after == 0) & (before == 0)
        positions = np.flatnonzero(bigram | alone)
        codes = (here[positions] << _LETTER_BITS) | np.where(
            bigram[positions], after[positions], _NO_LETTER
        )
        # The run of each letter of `here`: the run of each text, over its letters and the
        # separator after it.
        text_runs = np.repeat(np.arange(len(self._lengths)), self._lengths)
        text_sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1
        return codes, np.repeat(text_runs, text_sizes)[positions]

    def _term(self, code: int) -> str:
        """The term of a code: a term number, or a gram channel's letters."""
        if not self._grams:
            return self._terms[code]
        second = code & _NO_LETTER
        first = chr(code >> _LETTER_BITS)
        return first if second == _NO_LETTER else first + chr(second)

    def flush(self) -> None:
        """Add the gathered runs to the channel's postings."""
        channel = self._channel
        if not self._gathered:
            self._clear()
            return
        # Each term occurrence as a code (a term number, or a gram channel's letters) and
        # the run it is in.
        if self._grams:
            codes, token_runs = self._gram_codes()
        else:
            codes = np.array(self._tokens, dtype=np.int64)
            token_runs = np.repeat(np.arange(len(self._lengths)), self._lengths)
            self._terms = list(self._numbers)
        # Occurrences sorted by term, then by where they are (so by slot, then field): one
        # sort of code and position packed in one integer where they fit.
        count = len(codes)
        shift = max(count - 1, 1).bit_length()
        if int(codes.max()) < 1 << (62 - shift):
            packed = np.sort((codes << shift) | np.arange(count))
            code, position = packed >> shift, packed & ((1 << shift) - 1)
        else:
            position = np.lexsort((np.arange(count), codes))
            code = codes[position]
        run = token_runs[position]
        # Runs of one term in one field: the term's frequency there, weight / norm × tf as
        # `_insert` computes it.
        starts = np.flatnonzero(
            np.concatenate(([True], (code[1:] != code[:-1]) | (run[1:] != run[:-1])))
        )
        tf = np.diff(np.append(starts, count))
        code, run, position = code[starts], run[starts], position[starts]
        slot = np.asarray(self._slots, dtype=np.int64)[run]
        value = np.asarray(self._factors, dtype=np.float64)[run] * tf
        # The fields of one (term, slot) summed in field order, as `_insert` adds them up; a
        # field without the term adds 0.0, which changes no sum.
        first = np.concatenate(([True], (code[1:] != code[:-1]) | (slot[1:] != slot[:-1])))
        group = np.cumsum(first) - 1
        by_field = np.zeros((int(group[-1]) + 1, len(FIELDS)), dtype=np.float64)
        by_field[group, np.asarray(self._fields, dtype=np.int64)[run]] = value
        weighted_tf = by_field[:, 0]
        for column in range(1, len(FIELDS)):
            weighted_tf = weighted_tf + by_field[:, column]
        saturated = (weighted_tf / (channel.k1 + weighted_tf)).astype(np.float32)
        posting_codes = code[first]
        slot_bytes = slot[first].astype(np.int32).tobytes()
        weight_bytes = saturated.tobytes()
        # Each term's postings, and where it first occurs: terms new to the channel are added
        # in that order (of first occurrence), as entry-by-entry insertion adds them.
        term_starts = np.flatnonzero(
            np.concatenate(([True], posting_codes[1:] != posting_codes[:-1]))
        )
        bounds = [*term_starts.tolist(), len(posting_codes)]
        first_seen = position[first][term_starts]
        term_codes = posting_codes[term_starts].tolist()
        for index in np.argsort(first_seen).tolist():
            begin, end = 4 * bounds[index], 4 * bounds[index + 1]
            channel.extend(
                self._term(term_codes[index]), slot_bytes[begin:end], weight_bytes[begin:end]
            )
        self._clear()

    def _clear(self) -> None:
        self._tokens.clear()
        self._texts.clear()
        self._gathered = 0
        for gathered in (self._slots, self._fields, self._factors, self._lengths):
            gathered.clear()


@dataclass(frozen=True, slots=True)
class _Phrasing:
    """One way the entry's question is asked (the question itself or an alternative)."""

    reading: str
    terms: frozenset[str]


@dataclass(slots=True)
class _IndexedEntry:
    document: FaqDocument
    slot: int
    phrasings: tuple[_Phrasing, ...]
    asks: frozenset[str]


@dataclass(slots=True)
class _Analysed:
    document: FaqDocument
    fields: dict[str, dict[str, Collection[str]]]  # channel → field → terms
    phrasings: tuple[_Phrasing, ...]
    term_readings: frozenset[tuple[str, str]]
    conjugations: frozenset[tuple[str, tuple[str, ...]]]
    asks: frozenset[str]


class FaqEngine:
    """Ranks published FAQ entries for a resident's question."""

    CHANNELS = ("words", "reading", "surface", "pairs")
    GRAM_CHANNELS = frozenset({"reading", "surface"})  # terms: character bigrams (`_Grams`)

    def __init__(
        self,
        normalizer: TextNormalizer | None = None,
        thresholds: MatchThresholds | None = None,
        parameters: RankingParameters | None = None,
        word_vectors: WordVectors | None = None,
    ) -> None:
        self.normalizer = normalizer if normalizer is not None else TextNormalizer()
        self.thresholds = thresholds if thresholds is not None else MatchThresholds()
        self.parameters = parameters if parameters is not None else RankingParameters()
        # Pretrained vectors for words the FAQ lacks (see `RankingParameters.oov_expansion`);
        # None: the engine works without them.
        self.word_vectors = word_vectors
        self._reset()

    # -- index maintenance -------------------------------------------------------------

    def _reset(self) -> None:
        self._channels = {name: _Channel(self.parameters.k1) for name in self.CHANNELS}
        self._entries: dict[str, _IndexedEntry] = {}
        self._slot_ids: list[str | None] = []
        self._alive = bytearray()
        # Reading (kana) → the FAQ's words with that reading, for questions typed in kana.
        # Never pruned on removal: a word no entry has any more simply has no postings.
        self._reading_terms: dict[str, set[str]] = {}
        self._longest_reading = 0
        # (term, conjugated readings) already in `_reading_terms` (see
        # `RankingParameters.kana_conjugations`).
        self._conjugated: set[tuple[str, tuple[str, ...]]] = set()
        # Reading of a conjugated form → the FAQ's verbs and adjectives with that form.
        self._conjugation_terms: dict[str, set[str]] = {}
        # Phrasing terms → their summed IDF (see `_nearest_phrasings`); any change of the
        # index changes IDFs, so it is emptied then.
        self._phrasing_mass: dict[frozenset[str], float] = {}
        # Average field lengths for BM25 length normalisation, fixed at rebuild time (from a
        # sample, so a large FAQ never has to be held analysed in memory all at once).
        self._average_length: dict[str, dict[str, float]] = {
            c: dict.fromkeys(FIELDS, 1.0) for c in self.CHANNELS
        }
        # Document frequency of the words over fields of entries, and how many non-empty
        # fields the live entries have (see `RankingParameters.evidence_over_fields`).
        self._field_freq: Counter[str] = Counter()
        self._field_count = 0
        # The FAQ's words that have word vectors, and their vectors (see `_oov_stand_ins`);
        # made at the first question that needs it, dropped when the index changes.
        self._faq_word_matrix: tuple[list[str], FloatArray] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def documents(self) -> list[FaqDocument]:
        return [e.document for e in self._entries.values()]

    def get(self, entry_id: str) -> FaqDocument | None:
        indexed = self._entries.get(entry_id)
        return indexed.document if indexed else None

    def rebuild(self, documents: Iterable[FaqDocument]) -> None:
        """Replace the whole index (start-up, bulk import).

        The input is checked before the old index is dropped, so a bad call leaves the
        engine answering as before.
        """
        documents = list(documents)
        seen: set[str] = set()
        for document in documents:
            if document.id in seen:
                raise ValueError(f"duplicate FAQ id: {document.id}")
            seen.add(document.id)
        self._reset()
        # The build allocates millions of short-lived objects, and the cyclic garbage
        # collector's passes over them took about 6% of it; it makes no reference cycles
        # (a collection after a 2,000-entry build finds nothing).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._index_all(documents)
        finally:
            if collecting:
                gc.enable()

    def _index_all(self, documents: list[FaqDocument]) -> None:
        # The postings are built from all entries' terms at once (`_BulkPostings`), not entry
        # by entry as `upsert` adds them.
        bulk = {
            name: _BulkPostings(self._channels[name], grams=name in self.GRAM_CHANNELS)
            for name in self.CHANNELS
        }
        pending: list[_Analysed] = []
        for document in documents:
            item = self._analyse(document)
            if len(pending) < self.LENGTH_SAMPLE:
                pending.append(item)
                continue
            if pending:
                self._set_average_lengths(pending)
                for queued in pending:
                    self._insert(queued, bulk)
                pending = []
            self._insert(item, bulk)
        if pending:
            self._set_average_lengths(pending)
            for queued in pending:
                self._insert(queued, bulk)
        for gathered in bulk.values():
            gathered.flush()

    LENGTH_SAMPLE = 512

    def _set_average_lengths(self, sample: list[_Analysed]) -> None:
        for channel in self.CHANNELS:
            for name in FIELDS:
                total = sum(len(item.fields[channel][name]) for item in sample)
                self._average_length[channel][name] = max(total / len(sample), 1.0)

    def upsert(self, document: FaqDocument) -> None:
        """Add or replace one entry without touching the rest of the index."""
        self.remove(document.id)
        if not self._entries:
            self.rebuild([document])
            return
        self._insert(self._analyse(document))
        dead = len(self._slot_ids) - len(self._entries)
        if dead > 64 and dead > len(self._entries):
            self._compact()

    def _forget_derived(self) -> None:
        """Drop what is worked out from the index at query time (phrasing masses, the FAQ's
        word matrix): any change of the index changes IDFs and the FAQ's words."""
        self._phrasing_mass.clear()
        self._faq_word_matrix = None

    def remove(self, entry_id: str) -> bool:
        indexed = self._entries.pop(entry_id, None)
        if indexed is None:
            return False
        self._forget_derived()
        self._alive[indexed.slot] = 0
        self._slot_ids[indexed.slot] = None
        # Re-analysing the removed entry is cheaper than keeping every entry's terms around.
        analysed = self._analyse(indexed.document)
        for channel_name, fields in analysed.fields.items():
            distinct = {term for terms in fields.values() for term in terms}
            self._channels[channel_name].forget(distinct)
        self._count_fields(analysed, -1)
        return True

    def _count_fields(self, item: _Analysed, sign: int) -> None:
        """Add (sign 1) or take away (-1) the entry's fields in the field frequencies."""
        freq = self._field_freq
        for terms in item.fields["words"].values():
            if not terms:
                continue
            self._field_count += sign
            for term in set(terms):
                freq[term] += sign
                if freq[term] <= 0:
                    del freq[term]

    def _compact(self) -> None:
        self.rebuild(self.documents())

    def _analyse(self, doc: FaqDocument) -> _Analysed:
        normalizer = self.normalizer
        question = normalizer.analyze(doc.question)
        alternatives = [normalizer.analyze(a) for a in doc.alternatives]
        keywords = [normalizer.analyze(k) for k in doc.keywords]
        answer = normalizer.analyze(doc.answer)
        with_pairs = self.parameters.channel_weight["pairs"] > 0  # no index for a disabled one
        answer_surface = self.parameters.answer_surface_share > 0

        def channel_terms(
            analyses: list[Analysis],
            *,
            with_surface: bool = True,
            with_negation: bool = True,
        ) -> dict[str, Collection[str]]:
            words: list[str] = []
            reading: list[str] = []
            surface: list[str] = []
            pairs: list[str] = []
            for a in analyses:
                words.extend(a.terms)
                if a.negated and with_negation and self.parameters.negation:
                    words.append(NEGATION_TERM)
                if with_pairs:
                    pairs.extend(self._pairs(a.terms, a.parts))
                reading.append(a.reading)
                if with_surface:
                    surface.append(kana_fold(a.folded))
            return {
                "words": words,
                "reading": _Grams(reading),
                "surface": _Grams(surface),
                "pairs": pairs,
            }

        per_field = {
            "question": channel_terms([question]),
            "alternatives": channel_terms(alternatives),
            "keywords": channel_terms(keywords),
            # Answers negate all the time (使えません): only the ways of asking say that an
            # entry is about something that does not work.
            "answer": channel_terms([answer], with_surface=answer_surface, with_negation=False),
        }
        fields = {
            channel: {name: per_field[name][channel] for name in FIELDS}
            for channel in self.CHANNELS
        }
        phrasings = tuple(
            _Phrasing(reading=a.reading, terms=frozenset(a.terms))
            for a in (question, *alternatives)
            if a.folded
        )
        if self.parameters.answer_lead_phrasing and not alternatives:
            lead = normalizer.analyze(first_sentence(doc.answer[:MAX_ANALYZED_CHARS]))
            if lead.reading:
                # Reading only: no terms, so the word overlap skips it.
                phrasings += (_Phrasing(reading=lead.reading, terms=frozenset()),)
        term_readings = frozenset(
            pair
            for a in (question, *alternatives, *keywords, answer)
            for pair in a.term_readings
            if len(pair[1]) >= MIN_WHOLE_RUN_LENGTH and len(pair[0]) >= 2
        )
        conjugations = (
            frozenset(
                pair
                for a in (question, *alternatives, *keywords, answer)
                for pair in a.conjugations
            )
            if self.parameters.kana_conjugations
            else frozenset()
        )
        # What the entry asks, from its ways of asking only: the answer mentions everything.
        asks = frozenset(kind for a in (question, *alternatives) for kind in ask_kinds(a))
        return _Analysed(
            document=doc,
            fields=fields,
            phrasings=phrasings,
            term_readings=term_readings,
            conjugations=conjugations,
            asks=asks,
        )

    def _pairs(self, terms: tuple[str, ...], parts: frozenset[str]) -> list[str]:
        """Nearby pairs of content words (暗証番号+忘れる), in one canonical order.

        Two words that occur together say more than each alone: 暗証番号を忘れた is about a
        forgotten PIN, not about every entry that mentions a PIN and every one that mentions
        forgetting. Compound parts are left out (their compound stands for them).
        """
        wholes = [t for t in terms if t not in parts] if parts else terms
        window = self.parameters.pair_window
        out: list[str] = []
        append = out.append  # this runs for every text of every entry at rebuild
        for i, first in enumerate(wholes, 1):
            for second in wholes[i : i + window]:
                if first < second:
                    append(f"{first}|{second}")
                elif first != second:
                    append(f"{second}|{first}")
        return out

    def _insert(self, item: _Analysed, bulk: dict[str, _BulkPostings] | None = None) -> None:
        """Index one analysed entry: into the channels' postings, or into `bulk` (rebuild)."""
        self._forget_derived()
        slot = len(self._slot_ids)
        self._slot_ids.append(item.document.id)
        self._alive.append(1)
        params = self.parameters.fields
        for channel_name, fields in item.fields.items():
            weighted: dict[str, float] = {}
            get = weighted.get
            for field_index, (name, terms) in enumerate(fields.items()):
                if not terms:
                    continue
                b = params.length_norm[name]
                norm = 1.0 - b + b * len(terms) / self._average_length[channel_name][name]
                weight = params.weight[name]
                if (
                    name == "answer"
                    and params.answer_without_alternatives is not None
                    and not item.document.alternatives
                ):
                    weight = params.answer_without_alternatives
                if name == "answer" and channel_name == "surface":
                    weight *= self.parameters.answer_surface_share
                factor = weight / norm
                if bulk is not None:
                    bulk[channel_name].add(slot, field_index, factor, terms)
                    continue
                for term, tf in Counter(terms).items():
                    weighted[term] = get(term, 0.0) + factor * tf
            if bulk is None:
                self._channels[channel_name].add(slot, weighted)
        self._count_fields(item, 1)
        self._entries[item.document.id] = _IndexedEntry(
            document=item.document, slot=slot, phrasings=item.phrasings, asks=item.asks
        )
        for term, reading in item.term_readings:
            self._reading_terms.setdefault(reading, set()).add(term)
            self._longest_reading = max(self._longest_reading, len(reading))
        for conjugation in item.conjugations:
            if conjugation in self._conjugated:
                continue
            self._conjugated.add(conjugation)
            term, readings = conjugation
            for reading in readings:
                self._conjugation_terms.setdefault(reading, set()).add(term)
                self._longest_reading = max(self._longest_reading, len(reading))

    # -- matching -----------------------------------------------------------------------

    def rank(self, query: str, limit: int = 10) -> list[Candidate]:
        """Entries ranked for the query, best first, with calibrated scores in [0, 1]."""
        analysis = self.normalizer.analyze(query)
        if not self._entries or not (analysis.terms or analysis.reading or analysis.folded):
            return []
        params = self.parameters
        if params.drop_kana_fragments:
            analysis, in_kana = self._without_kana_fragments(analysis)
        else:
            in_kana = self._words_in_kana(
                analysis.folded, analysis.terms, self._known_kana_words(analysis)
            )
        query_words = analysis.terms + in_kana
        if analysis.negated and params.negation:
            query_words += (NEGATION_TERM,)
        factors = dict.fromkeys(analysis.parts, params.part_weight)
        extra = (
            self._oov_stand_ins(analysis.terms, factors)
            if params.oov_expansion and self.word_vectors is not None
            else None
        )
        # The plain and the stand-in passes share the phrasing similarities (same factors).
        memo: dict[str, float] | None = {} if extra else None
        channel_scores: dict[str, FloatArray] = {}
        ranked = self._scored(
            analysis, query_words, factors, channel_scores, extra=extra, memo=memo
        )
        if ranked is None:
            return []
        scored, shift = ranked
        earlier = self._earlier_sentence_factors(query, query_words, factors, len(analysis.folded))
        if earlier is not None:
            # Only the words channel changes: the others' scores are reused.
            channel_scores.pop("words", None)
            reordered = self._scored(analysis, query_words, earlier, channel_scores, extra=extra)
            if reordered is not None:
                # The order of the re-weighted ranking; the scores stay with the ranks, so
                # confidence (and so fallback) is the plain ranking's.
                scored = _scores_kept(scored, reordered[0])
        if extra:
            # The plain ranking's scores (and lift), the order found with the stand-ins.
            plain = self._scored(
                analysis,
                query_words,
                factors,
                {name: s for name, s in channel_scores.items() if name != "words"},
                memo=memo,
            )
            if plain is not None:
                scored = _scores_kept(plain[0], scored)
                shift = plain[1]
        scale = 1.0 + params.evidence_weight
        candidates: list[Candidate] = []
        for score, entry_id, _slot in scored[:limit]:
            candidates.append(
                Candidate(
                    faq_id=entry_id,
                    question=self._entries[entry_id].document.question,
                    score=round(min((score + shift) / scale, 1.0), 4),
                )
            )
        return candidates

    def _earlier_sentence_factors(
        self,
        query: str,
        query_words: tuple[str, ...],
        factors: dict[str, float],
        length: int,
    ) -> dict[str, float] | None:
        """Word factors that weigh down the words of a long question's earlier sentences.

        None when the rule does not apply: a short question, a single sentence, or a final
        sentence that has all of the question's words.
        """
        params = self.parameters
        if params.earlier_sentence_weight >= 1.0 or length < params.final_sentence_min_chars:
            return None
        # The raw text: folding turns line breaks into spaces.
        last = final_sentence(query[:MAX_ANALYZED_CHARS])
        if last is None:
            return None
        final = self.normalizer.analyze(last)
        blocked = self._known_kana_words(final)
        kept = {
            *final.terms,
            *self._words_in_kana(final.folded, final.terms, blocked),
            NEGATION_TERM,
        }
        earlier = set(query_words) - kept
        if not earlier:
            return None
        weighted = dict(factors)
        for term in earlier:
            weighted[term] = weighted.get(term, 1.0) * params.earlier_sentence_weight
        return weighted

    def _scored(
        self,
        analysis: Analysis,
        query_words: tuple[str, ...],
        factors: dict[str, float],
        channel_scores: dict[str, FloatArray],
        *,
        extra: dict[str, float] | None = None,
        memo: dict[str, float] | None = None,
    ) -> tuple[list[tuple[float, str, int]], float] | None:
        """The best `rerank_depth` entries as (score, id, slot), best first, and the lift.

        The lift calibrates the scores (see below); `factors` scales some words' IDF.
        `channel_scores` holds each channel's scores by slot: those missing are computed and
        added, those present are reused.
        """
        size = len(self._slot_ids)
        live = len(self._entries)
        params = self.parameters
        words = self._channels["words"]
        query_channels = {
            "words": query_words,
            "reading": tuple(char_ngrams(analysis.reading)),
            "surface": tuple(char_ngrams(kana_fold(analysis.folded))),
            "pairs": tuple(self._pairs(analysis.terms, analysis.parts)),
        }
        # The ranking score is a weighted mean over the signals this question can have (one
        # word has no pairs), so a question is not marked down for its shape.
        total_weight = params.fuzzy_weight + sum(
            params.channel_weight[name] for name, terms in query_channels.items() if terms
        )
        combined = np.zeros(size, dtype=np.float32)
        for name, terms in query_channels.items():
            if not terms or not params.channel_weight[name]:
                continue
            scores = channel_scores.get(name)
            if scores is None:
                scores = channel_scores[name] = self._channels[name].score(
                    terms,
                    live,
                    size,
                    factors if name == "words" else None,
                    extra if name == "words" else None,
                )
            combined += np.float32(params.channel_weight[name]) * scores
        # Slots of replaced or removed entries must not take a candidate's place.
        combined[np.frombuffer(self._alive, dtype=np.uint8) == 0] = -1.0

        depth = min(params.rerank_depth, live)
        if depth <= 0:
            return None
        top_slots = np.argpartition(-combined, depth - 1)[:depth]
        query_terms = frozenset(query_words)
        idf = {
            term: words.idf(term, live) * factors.get(term, 1.0)
            for term in dict.fromkeys(query_words)
        }
        found = [
            (slot, entry_id)
            for slot in top_slots.tolist()
            if (entry_id := self._slot_ids[slot]) is not None
        ]
        if not found:
            return None
        todo = [entry_id for _slot, entry_id in found if memo is None or entry_id not in memo]
        computed = dict(
            zip(
                todo,
                self._nearest_phrasings(
                    reading=analysis.reading,
                    terms=query_terms,
                    idf=idf,
                    entries=[self._entries[entry_id] for entry_id in todo],
                    live=live,
                ),
                strict=True,
            )
        )
        if memo is not None:
            memo.update(computed)
            computed = memo
        similarities = [computed[entry_id] for _slot, entry_id in found]
        scored: list[tuple[float, str, int]] = [
            (
                (float(combined[slot]) + params.fuzzy_weight * similarity) / total_weight,
                entry_id,
                slot,
            )
            for (slot, entry_id), similarity in zip(found, similarities, strict=True)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        # Calibration (the order stays): the same lift for every candidate, from the evidence
        # behind the best one, i.e. the IDF mass of the question's words it matches
        # (saturated), counted in words as rare as a word of one field (see
        # `RankingParameters.evidence_over_fields`; before it, of one entry). The words channel
        # alone is a share; a share of a long question is worth more than the same share of a
        # one-word one. On the development set, out-of-scope questions and answerable ones
        # (right entry in the top 5) separate better by the best score (ROC AUC, with the
        # part weight and pairs: 0.909 → 0.931 on the tuning part, 0.831 → 0.882 on the
        # independent part, 0.822 → 0.856 on the FAQ without alternatives and keywords).
        shift = 0.0
        if params.evidence_weight and "words" in channel_scores:
            if params.evidence_over_fields:
                best, units = scored[0][2], self._field_count
                rarest = _idf(1, units)  # the IDF of a word of one field
                matched = sum(
                    _idf(self._field_freq.get(term, 0), units)
                    * factors.get(term, 1.0)
                    * words.weight_at(term, best)
                    for term in idf  # the question's order (see `_Channel.score`)
                )
            else:
                rarest = _idf(1, live)  # the IDF of a word of one entry
                matched = float(channel_scores["words"][scored[0][2]]) * sum(idf.values())
            evidence = matched / max(rarest, 1e-6)
            shift = params.evidence_weight * evidence / (evidence + params.evidence_scale)
        # After the calibration: confidence is the first stage's.
        if params.ask_weight or params.ask_weight_with_alternatives:
            scored = self._by_ask_kind(ask_kinds(analysis), scored)
        return scored, shift

    def _by_ask_kind(
        self, asks: frozenset[str], scored: list[tuple[float, str, int]]
    ) -> list[tuple[float, str, int]]:
        """The best few reordered by whether they ask what the question asks.

        Only the first `ask_depth` move, among themselves, so the candidates offered stay the
        same; and the scores stay with the ranks: the ask kind decides which of close
        siblings comes first, not how sure the engine is (the thresholds keep their meaning).
        """
        params = self.parameters
        depth = params.ask_depth
        if not asks or len(scored) < 2:
            return scored
        head = scored[:depth]

        def bonus(entry_id: str) -> float:
            entry = self._entries[entry_id]
            weight = (
                params.ask_weight_with_alternatives
                if entry.document.alternatives
                else params.ask_weight
            )
            return weight * len(asks & entry.asks) / len(asks)

        reordered = sorted(head, key=lambda item: (-item[0] - bonus(item[1]), item[1]))
        return _scores_kept(head, reordered) + scored[depth:]

    def _oov_stand_ins(self, terms: tuple[str, ...], factors: dict[str, float]) -> dict[str, float]:
        """FAQ words standing in for the question's words the FAQ has never seen, with the
        IDF weight each is credited with (see `RankingParameters.oov_expansion`)."""
        params = self.parameters
        words = self._channels["words"]
        unknown = [t for t in dict.fromkeys(terms) if not words.doc_freq.get(t)]
        vectors = self.word_vectors
        if vectors is None or not unknown:
            return {}
        if self._faq_word_matrix is None:
            found = {t: vectors.row(t) for t, df in words.doc_freq.items() if df > 0}
            known = sorted(t for t, row in found.items() if row is not None)
            matrix = vectors.matrix([r for t in known if (r := found[t]) is not None])
            self._faq_word_matrix = (known, matrix)
        known, matrix = self._faq_word_matrix
        live = len(self._entries)
        out: dict[str, float] = {}
        for term in unknown:
            vector = vectors.get(term)
            if vector is None or not known:
                continue
            similarities = matrix @ vector
            nearest = np.argsort(-similarities, kind="stable")[: params.oov_neighbours]
            own = words.idf(term, live) * factors.get(term, 1.0)
            for index in nearest.tolist():
                similarity = float(similarities[index])
                if similarity < params.oov_threshold:
                    break
                stand_in = known[index]
                weight = params.oov_expansion * similarity * min(own, words.idf(stand_in, live))
                out[stand_in] = max(out.get(stand_in, 0.0), weight)
        return out

    def _words_in_kana(
        self, folded: str, known: tuple[str, ...], blocked: Blocked = ()
    ) -> tuple[str, ...]:
        """FAQ words whose reading appears in the kana parts of the question.

        Sudachi cannot split text typed all in kana reliably (あんしょうばんごうわすれた), but
        the FAQ's own vocabulary, looked up by reading, finds 暗証番号 and 忘れる in it.
        Longest match first at each position; words absent from the index are skipped.
        """
        return self._kana_matches(folded, known, blocked)[0]

    def _live_words(
        self, reading: str, span: tuple[int, int] | None = None, blocked: Blocked = ()
    ) -> frozenset[str] | None:
        """The FAQ words read so that entries still have; None for a reading of no word.

        A reading that is only a conjugated form (see `RankingParameters.kana_conjugations`)
        counts only where it does not overlap `blocked`, the stretches of the folded text
        (`span`) that Sudachi read as a word the FAQ knows (はじめて is 初めて, not 始めて).
        """
        doc_freq = self._channels["words"].doc_freq
        terms = self._reading_terms.get(reading)
        if terms is not None:
            live = frozenset(t for t in terms if doc_freq.get(t))
            if live:
                return live
        conjugated = self._conjugation_terms.get(reading)
        if len(reading) < MIN_READING_LENGTH:  # でよう, うてる, かけて: grammar, mostly
            conjugated = None
        if conjugated is None:
            return None if terms is None else frozenset()
        if span is not None and any(start < span[1] and span[0] < end for start, end in blocked):
            return None if terms is None else frozenset()
        return frozenset(t for t in conjugated if doc_freq.get(t))

    def _kana_matches(
        self, folded: str, known: tuple[str, ...], blocked: Blocked = ()
    ) -> tuple[tuple[str, ...], list[tuple[int, int, frozenset[str]]]]:
        """`_words_in_kana`, and the stretches of `folded` each match covers with its words.

        `blocked`: stretches of `folded` where conjugated forms may not match (see
        `_live_words`).
        """
        found: list[str] = []
        covered: list[tuple[int, int, frozenset[str]]] = []
        for match in _KANA_RUN_RE.finditer(folded):
            run = match.group(0)
            reading = kana_fold(run)
            # Where each letter of the reading is in `folded` (kana_fold drops ー).
            where = [match.start() + i for i, letter in enumerate(run) if letter != "ー"]
            if len(where) != len(reading):
                where = []
            live = self._live_words(reading, (match.start(), match.end()), blocked)
            if live is not None:  # the whole run is a word's reading
                found.extend(t for t in live if t not in known)
                if live and where:
                    covered.append((match.start(), match.end(), live))
                continue
            tiles = self._kana_tiles(reading, where, blocked)
            if tiles:
                for position, length, live in tiles:
                    found.extend(t for t in live if t not in known and t not in found)
                    if where:
                        end = where[position + length - 1] + 1
                        covered.append((where[position], end, live))
                continue
            position = 0
            while position <= len(reading) - MIN_READING_LENGTH:
                longest = min(self._longest_reading, len(reading) - position)
                for length in range(longest, MIN_READING_LENGTH - 1, -1):
                    span = (where[position], where[position + length - 1] + 1) if where else None
                    live = self._live_words(reading[position : position + length], span, blocked)
                    if live is not None:
                        found.extend(t for t in live if t not in known and t not in found)
                        if live and where:
                            end = where[position + length - 1] + 1
                            covered.append((where[position], end, live))
                        position += length - 1
                        break
                position += 1
        return tuple(found), covered

    def _kana_tiles(
        self, reading: str, where: list[int] | None = None, blocked: Blocked = ()
    ) -> list[tuple[int, int, frozenset[str]]] | None:
        """The run read as FAQ words end to end, particles between them (すまほ|を,
        ふざい|つうち), fewest pieces first: (position, length, words) of each word.

        None when it cannot be read so. Words as short as a whole run's (3 letters) count
        here, which inside a longer run would match grammar by accident (いない).
        """
        size, longest = len(reading), self._longest_reading
        # best[i]: fewest pieces reading reading[:i], the length of the piece ending there
        # and its words (None for a particle, which may only follow a word).
        best: list[tuple[int, int, frozenset[str] | None] | None] = [None] * (size + 1)
        best[0] = (0, 0, None)
        for end in range(1, size + 1):
            for length in range(min(longest, end), 0, -1):
                before = best[end - length]
                if before is None:
                    continue
                piece = reading[end - length : end]
                live: frozenset[str] | None = None
                if length >= MIN_WHOLE_RUN_LENGTH:
                    span = (where[end - length], where[end - 1] + 1) if where else None
                    live = self._live_words(piece, span, blocked)
                    if not live:
                        continue
                elif length != 1 or piece not in _PARTICLES or before[2] is None:
                    continue
                current = best[end]
                if current is None or before[0] + 1 < current[0]:
                    best[end] = (before[0] + 1, length, live)
        if best[size] is None:
            return None
        tiles: list[tuple[int, int, frozenset[str]]] = []
        end = size
        while end > 0:
            step = best[end]
            assert step is not None
            _count, length, words = step
            if words is not None:
                tiles.append((end - length, length, words))
            end -= length
        return tiles[::-1] if tiles else None

    def _without_kana_fragments(self, analysis: Analysis) -> tuple[Analysis, tuple[str, ...]]:
        """The question without Sudachi's terms inside kana that FAQ words cover by reading,
        and the FAQ words found by reading.

        Sudachi splits a word it does not know typed in kana into junk (こうきんうけとりこうざ
        → こう, きん, 受け取る, こう; ふんしつ → 糞, 質), and the FAQ's own kana phrasings are
        split the same way, so junk met junk. Where an FAQ word's reading covers the kana, the
        word stands for it.
        """
        doc_freq = self._channels["words"].doc_freq
        blocked = self._known_kana_words(analysis)
        found, covered = self._kana_matches(analysis.folded, analysis.terms, blocked)
        if not covered or not analysis.kana_terms:
            return analysis, found
        dropped = {
            index
            for index, begin, end in analysis.kana_terms
            for start, stop, words in covered
            if start <= begin
            and end <= stop
            and (term := analysis.terms[index]) not in words
            # Sudachi's words the FAQ has too (きょうしつ → 教室 in すまほきょうしつ,
            # もうしこみ → 申し込む) are no fragments; kana it could not turn into a word
            # (こう, せい) and words the FAQ does not have (糞 of ふんしつ) are.
            and (is_kana(term) or not doc_freq.get(term))
        }
        if not dropped:
            return analysis, found
        terms = tuple(t for i, t in enumerate(analysis.terms) if i not in dropped)
        return replace(analysis, terms=terms, kana_terms=()), found

    def _known_kana_words(self, analysis: Analysis) -> Blocked:
        """Stretches of the folded text Sudachi read as a word the FAQ knows, not in kana
        (はじめて → 初めて): conjugated forms do not match there (see `_live_words`)."""
        if not self._conjugation_terms:
            return ()
        doc_freq = self._channels["words"].doc_freq
        terms = analysis.terms
        spans = [
            (begin, end)
            for index, begin, end in analysis.kana_terms
            if not is_kana(terms[index]) and doc_freq.get(terms[index])
        ]
        return (*spans, *analysis.known_spans)

    def _nearest_phrasings(
        self,
        *,
        reading: str,
        terms: frozenset[str],
        idf: dict[str, float],
        entries: list[_IndexedEntry],
        live: int,
    ) -> list[float]:
        """For each entry, how close the question is to its nearest phrasing, 0..1.

        The larger of two views: rapidfuzz's ratio of the kana readings (typos, missing small
        kana) and the IDF-weighted Dice overlap of the content words (same words, any order,
        rare words counting most). The readings of all candidates are compared in one
        rapidfuzz call, and each phrasing's word mass is kept until the index changes: this
        runs for every question, over some hundred phrasings.
        """
        words = self._channels["words"]
        phrasings = [phrasing for entry in entries for phrasing in entry.phrasings]
        by_reading: list[float] = [0.0] * len(phrasings)
        if reading and phrasings:
            by_reading = (
                process.cdist(
                    [reading], [p.reading for p in phrasings], scorer=fuzz.ratio, dtype=np.float64
                )[0]
                / 100.0
            ).tolist()
        query_mass = sum(idf.values())
        masses = self._phrasing_mass
        result: list[float] = []
        index = 0
        for entry in entries:
            best = 0.0
            for phrasing in entry.phrasings:
                similarity = by_reading[index]
                index += 1
                if terms and phrasing.terms:
                    common = terms & phrasing.terms
                    if common:
                        # fsum: a set's order depends on the hash seed, an exact sum does not
                        shared = math.fsum(idf[t] for t in common)
                        mass = masses.get(phrasing.terms)
                        if mass is None:
                            mass = masses[phrasing.terms] = math.fsum(
                                words.idf(t, live) for t in phrasing.terms
                            )
                        # The query's mass plus the phrasing's words the query lacks.
                        rest = mass - math.fsum(words.idf(t, live) for t in common)
                        similarity = max(similarity, 2 * shared / (query_mass + rest + shared))
                best = max(best, similarity)
            result.append(best)
        return result

    def match(self, query: str) -> MatchResult:
        """Rank the query and decide: answered, suggested or fallback."""
        limit = max(self.thresholds.max_candidates, 2)
        ranked = self.rank(query, limit=limit)
        status = self.thresholds.decide([c.score for c in ranked])
        if status == "answered":
            return MatchResult(status="answered", candidates=tuple(ranked))
        if status == "suggested":
            # Only the plausible ones are offered as buttons.
            plausible = [c for c in ranked if c.score >= self.thresholds.suggest * 0.85]
            return MatchResult(status="suggested", candidates=tuple(plausible))
        return MatchResult(status="fallback", candidates=tuple(ranked))
