from django.urls import path

from dashboard import language, twofactor
from dashboard.views import auth, bots, broadcasts, groups, logs, pages, people, tokens

app_name = "dashboard"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("login/", auth.login_page, name="login"),
    path("login/telegram/", auth.telegram_callback, name="login-telegram"),
    path("login/link/<str:token>/", auth.login_link, name="login-link"),
    path("login/2fa/", twofactor.two_factor, name="two-factor"),
    path("login/2fa/setup/", twofactor.two_factor_setup, name="two-factor-setup"),
    path("logout/", auth.logout_view, name="logout"),
    path("logout/everywhere/", auth.logout_everywhere_view, name="logout-everywhere"),
    path("groups/", groups.group_list, name="groups"),
    path("groups/<int:pk>/", groups.group_detail, name="group"),
    path("groups/<int:pk>/settings/", groups.group_settings, name="group-settings"),
    path("groups/<int:pk>/toggle/", groups.group_toggle, name="group-toggle"),
    path("groups/<int:pk>/enforce/", groups.group_enforce, name="group-enforce"),
    path("groups/<int:pk>/members/<int:user_id>/<str:kind>/", groups.member_command,
         name="member-command"),
    path("commands/<int:pk>/", groups.command_status, name="command"),
    path("channels/", pages.channels, name="channels"),
    path("people/", people.people_list, name="people"),
    path("bots/", bots.bot_list, name="bots"),
    path("bots/add/", bots.bot_add, name="bot-add"),
    path("bots/<int:pk>/toggle/", bots.bot_toggle, name="bot-toggle"),
    path("analytics/", pages.analytics, name="analytics"),
    path("audit/", pages.audit_log, name="audit"),
    path("logs/", logs.log_lines, name="logs"),
    path("broadcasts/", broadcasts.broadcast_list, name="broadcasts"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    # Django's set_language at its usual address, also keeping a logged-in person's choice.
    path("i18n/setlang/", language.set_language, name="set-language"),
]
