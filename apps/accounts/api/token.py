"""The caller's own API token (``Authorization: Token <key>``), for scripts and QuPath.

POST makes a new one (replacing any old one) and is the only answer that shows the key; DELETE
revokes it, and with it every tile grant it had (``apps.accounts.signals``).
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.serializers import TokenSerializer
from apps.accounts.auth import acting_user


class MyTokenView(APIView):
    @extend_schema(responses={200: TokenSerializer, 404: None})
    def get(self, request: Request) -> Response:
        token = Token.objects.filter(user=acting_user(request)).first()
        if token is None:
            return Response({"detail": "you have no API token"}, status=status.HTTP_404_NOT_FOUND)
        return Response({"created": token.created})

    @extend_schema(request=None, responses={201: TokenSerializer})
    def post(self, request: Request) -> Response:
        user = acting_user(request)
        with transaction.atomic():
            Token.objects.filter(user=user).delete()
            token = Token.objects.create(user=user)
        return Response(
            {"key": token.key, "created": token.created}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user=acting_user(request)).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
