"""The protocol's JSON text, as the client, the executor and the worker write it: compact (no spaces), and
ASCII (json's default: lone surrogates, which stand for bytes that are not UTF-8, become \\udcXX escapes, the
protocol's encoding). One kept encoder: json.dumps given any option builds a new one for every call."""
import json

compact = json.JSONEncoder(separators=(",", ":")).encode
