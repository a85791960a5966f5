"""What revokes a user's remembered grants (``apps.accounts.access``): every way access ends.

Signals rather than calls in each service, so a change made anywhere (a service, Django's
admin, a shell) revokes too.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from . import access
from .middleware import MUST_CHANGE_PASSWORD
from .models import Membership, PasswordChangeRequired


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        access.revoke(user.pk)


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def _membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    access.revoke(instance.user_id)


@receiver(post_delete, sender=Token)
def _token_deleted(sender: Any, instance: Token, **kwargs: Any) -> None:
    access.revoke(instance.user_id)


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and PasswordChangeRequired.objects.filter(user=user).exists():
        request.session[MUST_CHANGE_PASSWORD] = True
