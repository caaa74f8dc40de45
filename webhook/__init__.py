"""The gateway: channels in, Rasa, the outbox, the counsellors\x27 queue. See webhook/app.py."""
