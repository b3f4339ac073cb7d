"""The auth domain: the viewer, login, users with roles, and API keys."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import PUBLIC, SIGNED_IN, Auth
from dataintel.directives.rate_limit import RateLimit, RateLimitPer
from dataintel.resolvers import auth as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.commerce import DATABASE_ID, FilterDescription, IdArgument
from dataintel.schema.node import Node, global_id
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.services import auth as records
from dataintel.services.auth import ADMIN_USERS_SCOPE, ROLES, api_key_keyset, user_keyset

# Enforced before execution by gateway/policy.py; the services check the same again, and
# apply the row-level rules (a user's own API keys) that a directive cannot express.
ADMINS = Auth(scopes=[ADMIN_USERS_SCOPE])
# Password guessing is throttled per client address, whichever account it aims at.
LOGIN_RATE_LIMIT = RateLimit(limit=10, window=60, per=RateLimitPer.IP)
PASSWORD_CHANGE_RATE_LIMIT = RateLimit(limit=5, window=300, per=RateLimitPer.VIEWER)


@strawberry.enum(description="A role: a named set of scopes (see docs/auth.md).")
class Role(enum.Enum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    DATA_ENGINEER = "data_engineer"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"


def _roles(names: frozenset[str] | tuple[str, ...]) -> list[Role]:
    # In the fixed order of ROLES; a name the schema does not know is left out.
    return [Role(name) for name in ROLES if name in names]


@strawberry.type(description="A user of the gateway.")
class User(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    email: str = strawberry.field(description="Sign-in email, lower case.")
    display_name: str = strawberry.field(description="The name shown for the user.")
    is_active: bool = strawberry.field(description="False once deactivated: nothing works.")
    created_at: datetime = strawberry.field(description="When the user was created (UTC).")
    roles: list[Role] = strawberry.field(description="The user's roles.")
    scopes: list[str] = strawberry.field(description="What the roles allow, sorted.")

    @classmethod
    def from_record(cls, record: records.UserRecord) -> User:
        return cls(
            id=global_id("User", record.id),
            database_id=record.id,
            email=record.email,
            display_name=record.display_name,
            is_active=record.is_active,
            created_at=record.created_at,
            roles=_roles(record.roles),
            scopes=sorted(record.scopes),
        )


@strawberry.type(name="Viewer", description="Who is asking, as the request's credential says.")
class ViewerType:
    id: strawberry.ID = strawberry.field(
        description="A user's id, or external:<subject> for an identity provider's token."
    )
    roles: list[Role] = strawberry.field(description="The viewer's roles.")
    scopes: list[str] = strawberry.field(description="What the viewer may do, sorted.")
    user: User | None = strawberry.field(
        description="The viewer's user record; null for an identity provider's subject."
    )

    @classmethod
    def from_record(cls, record: resolvers.Me) -> ViewerType:
        viewer = record.viewer
        return cls(
            id=strawberry.ID(viewer.user_id or ""),
            roles=_roles(viewer.roles),
            scopes=sorted(viewer.scopes),
            user=User.from_record(record.user) if record.user is not None else None,
        )


@strawberry.enum(description="Whether an API key still works.")
class ApiKeyState(enum.Enum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@strawberry.type(description="An API key; its secret is never shown again after creation.")
class ApiKey(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    user_id: strawberry.ID = strawberry.field(
        description="The databaseId of the user the key acts as (plain, as in 0.1.0)."
    )
    name: str = strawberry.field(description="What the key is for.")
    prefix: str = strawberry.field(description="The key's first characters, to recognize it.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    expires_at: datetime | None = strawberry.field(description="When it stops working, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked.")
    last_used_at: datetime | None = strawberry.field(
        description="When it was last used, to the minute."
    )
    state: ApiKeyState = strawberry.field(description="ACTIVE, REVOKED or EXPIRED.")

    @classmethod
    def from_record(cls, record: records.ApiKeyRecord) -> ApiKey:
        if record.revoked_at is not None:
            state = ApiKeyState.REVOKED
        elif record.is_usable(datetime.now(UTC)):
            state = ApiKeyState.ACTIVE
        else:
            state = ApiKeyState.EXPIRED
        return cls(
            id=global_id("ApiKey", record.id),
            database_id=record.id,
            user_id=strawberry.ID(str(record.user_id)),
            name=record.name,
            prefix=record.prefix,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            last_used_at=record.last_used_at,
            state=state,
        )


@strawberry.type(description="A new API key with its secret, which is shown this once.")
class CreatedApiKey:
    key: str = strawberry.field(
        description="The secret: send it as `Authorization: Bearer <key>` or `X-API-Key`."
    )
    api_key: ApiKey = strawberry.field(description="The key's record.")

    @classmethod
    def from_record(cls, record: records.CreatedApiKey) -> CreatedApiKey:
        return cls(key=record.secret, api_key=ApiKey.from_record(record.record))


@strawberry.type(description="A bearer token for the signed-in user.")
class LoginPayload:
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")
    token_type: str = strawberry.field(description="Always Bearer.")
    expires_at: datetime = strawberry.field(description="When the token stops working (UTC).")
    user: User = strawberry.field(description="Who signed in.")

    @classmethod
    def from_record(cls, record: records.LoginResult) -> LoginPayload:
        return cls(
            token=record.token,
            token_type="Bearer",
            expires_at=record.expires_at,
            user=User.from_record(record.user),
        )


@strawberry.input(description="Users matching every given condition.")
class UserFilter:
    active: bool | None = strawberry.field(default=None, description="Active or deactivated.")
    role: list[Role] | None = strawberry.field(default=None, description="Holding any of these.")
    email_contains: str | None = strawberry.field(
        default=None, description="Email containing this text (case-insensitive)."
    )

    def to_record(self) -> records.UserFilter:
        return records.UserFilter(
            active=self.active,
            roles=tuple(role.value for role in self.role) if self.role is not None else None,
            email_contains=self.email_contains,
        )


@strawberry.input(description="A new user.")
class CreateUserInput:
    email: str = strawberry.field(description="Sign-in email; unique.")
    display_name: str | None = strawberry.field(
        default=None, description="The name shown; default: the email's local part."
    )
    password: str | None = strawberry.field(
        default=None,
        description="At least 12 characters; send it in variables, never in the query text."
        " Without one, the user signs in only with API keys.",
    )
    roles: list[Role] = strawberry.field(
        default_factory=lambda: [Role.VIEWER], description="The user's roles."
    )

    def to_record(self) -> records.NewUser:
        return records.NewUser(
            email=self.email,
            display_name=self.display_name,
            password=self.password,
            roles=tuple(role.value for role in self.roles),
        )


UserIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]


@strawberry.type
class AuthQuery:
    @strawberry.field(
        description="The viewer behind the request's credential; null if none.",
        directives=[PUBLIC],
    )
    async def me(self, info: Info) -> ViewerType | None:
        record = await resolvers.me(info)
        return ViewerType.from_record(record) if record is not None else None

    @strawberry.field(
        description="A user by id: admins see everyone, others only themselves.",
        directives=[SIGNED_IN],
    )
    async def user(self, info: Info, id: IdArgument) -> User | None:
        record = await resolvers.user(info, id)
        return User.from_record(record) if record is not None else None

    @strawberry.field(description="Users by id, filtered; admins only.", directives=[ADMINS])
    async def users(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[UserFilter | None, FilterDescription] = None,
    ) -> Connection[User] | None:
        where = filter.to_record() if filter is not None else records.UserFilter()
        page = resolvers.page_request(info, first, after, last, before)
        found, count = await resolvers.users(info, page, where)
        return Connection.from_page(found, User.from_record, user_keyset, count)

    @strawberry.field(
        description="API keys, newest first: the viewer's own; admins see every user's.",
        directives=[SIGNED_IN],
    )
    async def api_keys(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        user_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this user's keys (admins)."),
        ] = None,
    ) -> Connection[ApiKey] | None:
        page = resolvers.page_request(info, first, after, last, before)
        found, count = await resolvers.api_keys(info, page, user_id)
        return Connection.from_page(found, ApiKey.from_record, api_key_keyset, count)


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description="A bearer token for an email and password (send them in variables)."
        " Wrong ones are UNAUTHENTICATED on this field; every attempt is audited.",
        directives=[PUBLIC, LOGIN_RATE_LIMIT],
    )
    async def login(
        self,
        info: Info,
        email: Annotated[str, strawberry.argument(description="The account's e-mail.")],
        password: Annotated[str, strawberry.argument(description="Its password.")],
    ) -> LoginPayload | None:
        return LoginPayload.from_record(await resolvers.login(info, email, password))

    @strawberry.mutation(
        description="Signs out: revokes the bearer token this request carries, on every"
        " replica, until it would have expired. Audited.",
        directives=[SIGNED_IN],
    )
    async def logout(self, info: Info) -> bool | None:
        return await resolvers.logout(info)

    @strawberry.mutation(
        description="Revokes a bearer token (send it in variables) on every replica until it"
        " would have expired; admins only. Audited by the token's id, never its text.",
        directives=[ADMINS],
    )
    async def revoke_token(
        self,
        info: Info,
        token: Annotated[str, strawberry.argument(description="The bearer token to revoke.")],
    ) -> bool | None:
        return await resolvers.revoke_token(info, token)

    @strawberry.mutation(description="Creates a user; admins only.", directives=[ADMINS])
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The new user.")],
    ) -> User | None:
        return User.from_record(await resolvers.create_user(info, input.to_record()))

    @strawberry.mutation(
        description="Replaces a user's roles; admins only. The last active admin keeps admin.",
        directives=[ADMINS],
    )
    async def set_user_roles(
        self,
        info: Info,
        user_id: UserIdArgument,
        roles: Annotated[
            list[Role], strawberry.argument(description="The roles it holds from now.")
        ],
    ) -> User | None:
        names = [role.value for role in roles]
        return User.from_record(await resolvers.set_roles(info, user_id, names))

    @strawberry.mutation(
        description="Deactivates a user: their tokens and API keys stop working; admins only.",
        directives=[ADMINS],
    )
    async def deactivate_user(self, info: Info, user_id: UserIdArgument) -> User | None:
        return User.from_record(await resolvers.set_active(info, user_id, False))

    @strawberry.mutation(
        description="Reactivates a deactivated user; admins only.", directives=[ADMINS]
    )
    async def reactivate_user(self, info: Info, user_id: UserIdArgument) -> User | None:
        return User.from_record(await resolvers.set_active(info, user_id, True))

    @strawberry.mutation(
        description="Changes the viewer's own password (send both in variables); tokens"
        " issued before stay valid until they expire.",
        directives=[SIGNED_IN, PASSWORD_CHANGE_RATE_LIMIT],
    )
    async def change_password(
        self,
        info: Info,
        current_password: Annotated[str, strawberry.argument(description="The password now.")],
        new_password: Annotated[str, strawberry.argument(description="The password to set.")],
    ) -> User | None:
        changed = await resolvers.change_password(info, current_password, new_password)
        return User.from_record(changed)

    @strawberry.mutation(
        description="Sets a user's password (in variables); admins only.", directives=[ADMINS]
    )
    async def set_user_password(
        self,
        info: Info,
        user_id: UserIdArgument,
        password: Annotated[str, strawberry.argument(description="The password to set.")],
    ) -> User | None:
        return User.from_record(await resolvers.set_password(info, user_id, password))

    @strawberry.mutation(
        description="Creates an API key for the viewer (admins: for any user). The secret is"
        " in the answer and nowhere else.",
        directives=[SIGNED_IN],
    )
    async def create_api_key(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="What the key is for.")],
        expires_at: Annotated[
            datetime | None, strawberry.argument(description="When it stops working.")
        ] = None,
        user_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Whose key (admins); default: the viewer's."),
        ] = None,
    ) -> CreatedApiKey | None:
        created = await resolvers.create_api_key(info, name, expires_at, user_id)
        return CreatedApiKey.from_record(created)

    @strawberry.mutation(
        description="Revokes an API key of the viewer's (admins: any key).",
        directives=[SIGNED_IN],
    )
    async def revoke_api_key(self, info: Info, id: IdArgument) -> ApiKey | None:
        return ApiKey.from_record(await resolvers.revoke_api_key(info, id))
