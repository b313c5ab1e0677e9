"""The admins' users page: list, create and delete through the JSON API's own routes
(POST /users, DELETE /users/{name}), which the page's script calls with the CSRF header."""

from __future__ import annotations

from flask import render_template

from api.access import require_admin
from api.dashboard.blueprint import bp
from api.dashboard.described import html_page
from api.dashboard.session import page
from api.db import get_db
from api.tokens import Principal
from api.users import describe_user
from datastore import users
from protocol import UserRole


@bp.get("/ui/users")
@html_page("The admins' users page", description="A user who is not an admin gets 403.")
@page
def users_page(principal: Principal):
    require_admin()
    listed = [describe_user(row) for row in users.list_users(get_db())]
    roles = [UserRole.USER.value, UserRole.ADMIN.value]
    return render_template("users.html", principal=principal, users=listed, roles=roles)
