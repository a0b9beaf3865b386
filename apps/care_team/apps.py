from django.apps import AppConfig


class CareTeamConfig(AppConfig):
    name = "apps.care_team"
    label = "care_team"
    verbose_name = "诊疗关系"
