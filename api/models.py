"""Response shapes shared by the routes."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, and how to ask for the next one."""

    items: list[T]
    limit: int = Field(description="Items per page asked for.")
    offset: int = Field(description="Items skipped.")
    count: int = Field(description="Items on this page; fewer than limit: the last page.")


def page_of(items: list[T], limit: int, offset: int) -> Page[T]:
    return Page[T](items=items, limit=limit, offset=offset, count=len(items))
