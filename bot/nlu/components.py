"""Rasa 3 graph components for Vietnamese: tokenizer, gazetteer and risk annotator.

Order in ``bot/config.yml``: VietnameseTokenizer → featurizers → DIETClassifier →
FallbackClassifier → Gazetteer → RiskAnnotator. Nothing here reads files or opens connections
at import time (the action server and Rasa import modules eagerly).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token as RasaToken
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import intents as I
from bot.context import VIOLENCE_TOPICS
from bot.context import writer as writer_of
from bot.nlu import fastvec
from bot.nlu import normalize as N
from bot.nlu.gazetteer import Gazetteer as GazetteerIndex
from bot.nlu.language import language as language_of
from bot.nlu.segments import sentences
from bot.understanding import understand

logger = logging.getLogger(__name__)

# Below the fallback threshold a best guess that is an information question is still answered at
# this confidence: information for a slightly different question helps more than "I did not
# understand" (a guess that is a disclosure or a crisis is never taken from here: the rules decide).
FALLBACK_INFO_MIN = 0.35

# The sentence model reads at most this many sentences of a message (the rules read them all).
MAX_PARTS = 40

# DIET reads a long message's beginning and its end (where the question and "tonight" are): a
# 10,000-character paste is kept by the gateway and read in full by the rules and, sentence by
# sentence, by the SentenceReader; the whole-message model needs only its gist (docs/nlu.md).
NLU_HEAD_CHARS = int(os.environ.get("HELPLINE_NLU_HEAD", 900))
NLU_TAIL_CHARS = int(os.environ.get("HELPLINE_NLU_TAIL", 300))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(Tokenizer):
    """Tokens are normalised syllables (folded, teencode and dialect expanded), so accented and
    unaccented spellings give the same features. With ``segmenter: pyvi`` the syllables are first
    grouped into words by pyvi (``bạo lực`` → ``bao_luc``); ``add_syllables`` also keeps the
    syllables of each compound. Offsets always point into the original text."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            "segmenter": "none",  # none | pyvi
            "add_syllables": True,
        }

    @staticmethod
    def not_supported_languages() -> Optional[List[Text]]:
        return None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "VietnameseTokenizer":
        return cls(config)

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self._segmenter = None
        if self._config.get("segmenter") == "pyvi":
            from pyvi import ViTokenizer  # the CRF model ships inside the package

            self._segmenter = ViTokenizer

    def tokenize(self, message: Message, attribute: Text) -> List[RasaToken]:
        raw = message.get(attribute) or ""
        text = N.clean(raw)
        tokens = self._segment(text) if self._segmenter else [
            RasaToken(t.text, t.start, t.end) for t in N.tokenize(text)
        ]
        if attribute == TEXT and len(text) > NLU_HEAD_CHARS + NLU_TAIL_CHARS:
            tail = len(text) - NLU_TAIL_CHARS
            tokens = [t for t in tokens if t.end <= NLU_HEAD_CHARS or t.start >= tail]
        if not tokens:
            tokens = [RasaToken("empty", 0, 0)]
        return self._apply_token_pattern(tokens)

    def _segment(self, text: str) -> List[RasaToken]:
        syllables = [m for m in N._WORD.finditer(text)]
        try:
            words = self._segmenter.tokenize(text).split()
        except Exception:  # pyvi is a model: never let it take a message down
            logger.warning("pyvi_failed")
            words = []
        out: List[RasaToken] = []
        i = 0
        for word in words:
            parts = [p for p in word.split("_") if N._WORD.fullmatch(p)]
            if not parts:
                continue
            span = syllables[i:i + len(parts)]
            if len(span) != len(parts) or any(s.group().lower() != p.lower() for s, p in zip(span, parts)):
                return [RasaToken(t.text, t.start, t.end) for t in N.tokenize(text)]
            i += len(parts)
            expanded = [N._expand_syllable(s.group()) for s in span]
            if len(parts) > 1 and all(len(e) == 1 for e in expanded):
                out.append(RasaToken("_".join(e[0] for e in expanded), span[0].start(), span[-1].end()))
                if self._config.get("add_syllables"):
                    out.extend(RasaToken(e[0], s.start(), s.end()) for e, s in zip(expanded, span))
            else:
                for e, s in zip(expanded, span):
                    out.extend(RasaToken(w, s.start(), s.end()) for w in e)
        if i != len(syllables):
            return [RasaToken(t.text, t.start, t.end) for t in N.tokenize(text)]
        return out


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class Gazetteer(GraphComponent, EntityExtractorMixin):
    """Finds ``locality`` (a former district of Quảng Nam), ``relationship`` (Primero's
    perpetrator-relationship list) and ``person_at_risk`` (child, self, other) by dictionary on the
    folded text, so "Núi Thành", "nui thanh" and "NUI THANH" all give ``locality=nui_thanh``.
    The dictionaries come from ``data/kb/`` at training time and are stored inside the model."""

    FILE = "gazetteer.json"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"localities": "data/kb/localities.yml", "relationships": "data/kb/relationships.yml"}

    def __init__(self, config, model_storage, resource, index: Optional[GazetteerIndex] = None):
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._index = index

    @classmethod
    def create(cls, config, model_storage, resource, execution_context) -> "Gazetteer":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        self._index = GazetteerIndex.from_files(self._config["localities"], self._config["relationships"])
        with self._storage.write_to(self._resource) as path:
            (Path(path) / self.FILE).write_text(json.dumps(self._index.to_json(), ensure_ascii=False), "utf-8")
        return self._resource

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs) -> "Gazetteer":
        with model_storage.read_from(resource) as path:
            data = json.loads((Path(path) / cls.FILE).read_text("utf-8"))
        return cls(config, model_storage, resource, GazetteerIndex.from_json(data))

    def process(self, messages: List[Message]) -> List[Message]:
        if self._index is None:
            return messages
        for message in messages:
            found = self._index.find(message.get(TEXT) or "")
            entities = self.add_extractor_name([e.as_rasa() for e in found])
            message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceReader(GraphComponent):
    """Reads a message of several sentences one sentence at a time and adds ``parts`` (each
    sentence's intent and probability) to the parse result; ``bot.understanding`` combines them
    with the whole-message intent and the rules (docs/nlu.md, "Long messages").

    DIET cannot be asked again about a piece of the message inside Rasa's graph (the featurizers
    run once, on the whole text), so this is a second, small model trained on the same examples:
    TF-IDF of normalised words and character n-grams with a logistic regression. It trains in a
    few seconds and reads a sentence in well under a millisecond. It never sets the intent: it
    only adds what each part says."""

    FILE = "sentence_reader.pkl"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 8.0, "max_iter": 3000}

    def __init__(self, config, model_storage, resource, model=None):
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(cls, config, model_storage, resource, execution_context) -> "SentenceReader":
        return cls(config, model_storage, resource)

    @staticmethod
    def build(C: float = 8.0, max_iter: int = 3000):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        features = make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+"),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
        )
        return make_pipeline(features, LogisticRegression(C=C, max_iter=max_iter))

    def train(self, training_data: TrainingData) -> Resource:
        import pickle

        texts, labels = [], []
        for ex in training_data.intent_examples:
            intent = ex.get(INTENT)
            if intent and ex.get(TEXT):
                texts.append(N.normalize(ex.get(TEXT)))
                labels.append(intent)
        if len(set(labels)) >= 2:
            self._model = self.build(self._config["C"], self._config["max_iter"]).fit(texts, labels)
            with self._storage.write_to(self._resource) as path:
                (Path(path) / self.FILE).write_bytes(pickle.dumps(self._model))
        return self._resource

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs) -> "SentenceReader":
        import pickle

        try:
            with model_storage.read_from(resource) as path:
                model = pickle.loads((Path(path) / cls.FILE).read_bytes())   # our own model file
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, _column_major(model))

    def read(self, parts: List[str]) -> List[Dict[Text, Any]]:
        """Intent and probability of each sentence."""
        if self._model is None or not parts:
            return []
        probs = self._model.predict_proba([N.normalize(p) for p in parts])
        classes = self._model.classes_
        out = []
        for row in probs:
            best = int(row.argmax())
            out.append({"intent": str(classes[best]), "confidence": round(float(row[best]), 4)})
        return out

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            parts = sentences(message.get(TEXT) or "")
            if len(parts) > 1:
                # every sentence is read by the rules; the model reads the first MAX_PARTS
                read = self.read(parts[:MAX_PARTS])
                message.set("parts", read + [None] * (len(parts) - len(read)), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


def _column_major(model):
    """Two changes that keep every result and make a long letter cheaper to read: the regression's
    weights stored column by column (scipy multiplies the sparse features by ``coef_.T`` and would
    otherwise copy the whole matrix, ~7 MB, for every message), and the vectorizers' counts of
    each word remembered (``bot.nlu.fastvec``: a letter repeats the same few thousand syllables)."""
    import numpy as np

    if model is None:
        return model
    if hasattr(model[-1], "coef_"):
        model[-1].coef_ = np.asfortranarray(model[-1].coef_)
    for _, vectorizer in getattr(model[0], "transformer_list", []):
        fastvec.speed_up(vectorizer)
    return model


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class CachedCountVectorsFeaturizer(CountVectorsFeaturizer):
    """Rasa's ``CountVectorsFeaturizer`` with the vocabulary indices of each token remembered
    (``bot.nlu.fastvec``): the same features, value for value, in a fraction of the time for a
    long letter (Rasa counts every token as a document, then the whole text again)."""

    def _create_features(self, attribute, all_tokens):
        for vectorizer in (self.vectorizers or {}).values():
            fastvec.speed_up(vectorizer)
        return super()._create_features(attribute, all_tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RiskAnnotator(GraphComponent):
    """Adds ``topic``, ``risk``, ``action`` and ``risk_reasons`` to every parse result and routes
    urgent messages to the urgent dialogue (see ``bot.understanding``). Must come last."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

    @classmethod
    def create(cls, config, model_storage, resource, execution_context) -> "RiskAnnotator":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            confidence = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            if name == "nlu_fallback":
                # the fallback hides the model's best guess; the topic should still say it
                ranking = message.get("intent_ranking") or []
                best = next((r for r in ranking if r.get("name") != "nlu_fallback"), None)
                if best:
                    name, confidence = best["name"], float(best.get("confidence") or 0.0)
                    topic_only = True
                else:
                    topic_only = False
            else:
                topic_only = False
            u = understand(text, name, confidence, parts=message.get("parts"),
                           context=(message.get("metadata") or {}).get("context"), guess=topic_only)
            placed = any(r.startswith("context:") for r in u.reasons)
            if topic_only and u.risk == "none" and u.intent == name and not placed and not (
                    I.info(name).kind == "info" and confidence >= FALLBACK_INFO_MIN):
                u.intent = "nlu_fallback"      # unsure, and the context did not place it either
            message.set("topic", u.topic, add_to_output=True)
            message.set("risk", u.risk, add_to_output=True)
            message.set("action", u.action, add_to_output=True)
            message.set("risk_reasons", u.reasons, add_to_output=True)
            message.set("model_intent", u.model_intent, add_to_output=True)
            message.set("conversation_risk", u.conversation_risk, add_to_output=True)
            message.set("question", u.question, add_to_output=True)
            # what the dialogue's slots need (bot/domain/core.yml): the conversation's language, who
            # is writing, and the subject of a disclosure (for the safety steps that fit it)
            found = []
            lang = language_of(text)
            if lang:
                found.append(("language", lang))
            who = writer_of(text)
            if who:
                found.append(("writer", who))
            if u.risk != "none" and u.topic in VIOLENCE_TOPICS:
                found.append(("topic", u.topic))
            if found:
                message.set(ENTITIES, message.get(ENTITIES, []) + [
                    {"entity": e, "value": v, "start": 0, "end": 0, "extractor": "RiskAnnotator"} for e, v in found],
                    add_to_output=True)
            if u.intent != (intent.get(INTENT_NAME_KEY)):
                message.set(INTENT, {INTENT_NAME_KEY: u.intent, PREDICTED_CONFIDENCE_KEY: confidence}, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
