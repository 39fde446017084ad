"""Constants shared by the test modules."""

from support import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
