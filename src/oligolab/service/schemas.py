"""Typed request bodies of the JSON API (pydantic): what each call takes, validated before any work; the
OpenAPI page documents them. Values are checked further by the service's own rules (one-line 400s)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Login(BaseModel):
    username: str = ""
    password: str = ""


class Correction(BaseModel):
    """Changes to the current version, with one reason. Each change is one of ``{"sample", "call"}``,
    ``{"sample", "accept": true}``, ``{"accept_held_for": REASONS}`` (every sample held for exactly those
    reasons) or ``{"well", "target", "amplified"}``."""

    changes: list[dict[str, Any]] = Field(default_factory=list)
    reason: str = ""


class Sign(BaseModel):
    version: int = 0
    reason: str = Field("", description="required for an invalid run: it is then released without results")


class NewUser(BaseModel):
    username: str = ""
    password: str = ""
    role: str = ""
    full_name: str = ""


class UserChange(BaseModel):
    role: str | None = None
    active: bool | None = None
    password: str | None = None


class NewAssay(BaseModel):
    name: str = ""
    ruleset: str = ""
    watch_assays: list[str] | str = Field(default_factory=list)
    loinc_code: str = ""
    loinc_display: str = ""


class NewRuleSet(BaseModel):
    name: str = ""
    yaml: str = ""


class LabSettings(BaseModel):
    four_eyes: bool = False


class NewLab(BaseModel):
    name: str = ""
    admin_username: str = ""
    admin_password: str = ""


class PasswordChange(BaseModel):
    current: str = ""
    new: str = ""
