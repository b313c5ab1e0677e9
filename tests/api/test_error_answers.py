"""The lower packages' errors get their HTTP answers in one place, in the JSON error shape."""

from __future__ import annotations

import pytest
from flask import Flask

from accounts import UnknownUser, WeakPassword
from api.errors import register_error_handlers
from datastore.users import UserExists
from imagestore import ImageMissing, ImageStoreError, StoreFull


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (StoreFull("the image store is full; try again later"), 507, "insufficient_storage"),
        (ImageMissing("the original file of image 3 is missing"), 404, "not_found"),
        (ImageStoreError("the image store failed: Permission denied"), 500, "storage_error"),
        (WeakPassword("a password must be text of at least 8 characters"), 400, "invalid_password"),
        (UnknownUser("user 'carol' does not exist"), 404, "not_found"),
        (UserExists("user 'carol' already exists"), 409, "duplicate_username"),
    ],
)
def test_each_error_has_its_answer(error: Exception, status: int, code: str) -> None:
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/")
    def fail():
        raise error

    response = app.test_client().get("/")
    assert response.status_code == status
    assert response.get_json() == {"error": code, "message": str(error)}
