from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_process_control_alert_settings')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AddOn',
            name='conditions',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='OutboxEmail',
            name='html_body',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='OutboxEmail',
            name='kind',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='OutboxEmail',
            name='locale',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
