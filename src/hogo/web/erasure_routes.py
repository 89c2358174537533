"""Web pages for deletion certificates (消去証明; ANON-10, SEC-50, MN-5d); installed by
``hogo.web.routes.install``. No rule lives here: the pages show what ``hogo.services.erasure`` answers.

* ``/certificates``: every deletion record, newest first (protection managers and the audit roles);
* ``/certificates/{id}``: one certificate: what, when, how, who ordered, hogo's check, the signature, and
  the contractors' certificates attached. Certificates hold no personal data.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hogo.errors import HogoError
from hogo.services import erasure
from hogo.services.auth import Principal
from hogo.web import i18n_erasure  # noqa: F401  (adds the pages' texts to MESSAGES)
from hogo.web.data_routes import _message
from hogo.web.routes import _hogo, _t, ready_principal, render

router = APIRouter(include_in_schema=False)
BADGES = {"complete": "success", "purged": "pending", "pending": "pending"}


@router.get("/certificates")
def certificate_list(request: Request, principal: Principal = Depends(ready_principal)) -> Response:
    try:
        rows = erasure.list_certificates(_hogo(request), principal)
    except HogoError as exc:
        return render(request, "erasure/list.html", principal=principal, status=exc.status, certificates=[],
                      page_error=_message(_t(request), exc), badges=BADGES)
    return render(request, "erasure/list.html", principal=principal, certificates=rows, page_error=None,
                  badges=BADGES)


@router.get("/certificates/{deletion_id}")
def certificate_show(request: Request, deletion_id: int, principal: Principal = Depends(ready_principal)) -> Response:
    try:
        cert = erasure.show(_hogo(request), principal, deletion_id)
    except HogoError as exc:
        return render(request, "erasure/list.html", principal=principal, status=exc.status, certificates=[],
                      page_error=_message(_t(request), exc), badges=BADGES)
    return render(request, "erasure/show.html", principal=principal, c=cert, body=cert.certificate or {},
                  badges=BADGES)
