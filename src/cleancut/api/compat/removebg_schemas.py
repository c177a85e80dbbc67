"""remove.bg's bodies as OpenAPI shows them (the router builds and reads them by hand)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RemoveBgErrorItem(BaseModel):
    title: str
    code: str
    detail: str


class RemoveBgErrors(BaseModel):
    errors: list[RemoveBgErrorItem]


class RemoveBgResult(BaseModel):
    result_b64: str = Field(description="the result file, base64-encoded")
    foreground_top: int
    foreground_left: int
    foreground_width: int
    foreground_height: int


class RemoveBgJson(BaseModel):
    data: RemoveBgResult


class RemoveBgRequest(BaseModel):
    """remove.bg's fields; exactly one of image_file, image_file_b64, image_url."""

    image_file: bytes | None = Field(default=None, description="the image (multipart file)")
    image_file_b64: str | None = None
    image_url: str | None = None
    size: str = Field(default="preview", description="preview|medium|hd|full|50MP|auto")
    type: str = Field(default="auto", description="auto|person|product|car|animal|graphic")
    format: str = Field(default="auto", description="auto|png|jpg|webp|zip")
    roi: str = Field(default="0% 0% 100% 100%", description="x1 y1 x2 y2 in px or %")
    crop: bool = False
    crop_margin: str = Field(default="0", description="'30px' or '10%'")
    scale: str = Field(default="original", description="'original' or '10%'..'100%'")
    position: str = Field(default="original", description="'original', 'center' or '50% 0%'")
    channels: str = Field(default="rgba", description="rgba|alpha")
    add_shadow: bool = False
    bg_color: str | None = Field(default=None, description="81d4fa, fff, 81d4fa77 or a name")
    bg_image_url: str | None = None
    bg_image_file: bytes | None = None


class AccountCredits(BaseModel):
    total: float
    subscription: float
    payg: float
    enterprise: float


class AccountApi(BaseModel):
    free_calls: int
    sizes: str


class AccountAttributes(BaseModel):
    credits: AccountCredits
    api: AccountApi


class AccountData(BaseModel):
    attributes: AccountAttributes


class Account(BaseModel):
    data: AccountData
