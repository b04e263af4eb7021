from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Cart',
            name='quote',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='LimitAlert',
            name='published_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='LimitAlert',
            index=Index(fields=['published_at', 'id']),
        ),
        # Alerts stored before this migration were published live when they happened: mark them so,
        # or the dispatcher of unpublished alerts would push them all again after the upgrade.
        ops.RunSQL(
            'UPDATE "limit_alert" SET "published_at" = "created_at" WHERE "published_at" IS NULL',
            reverse_sql='SELECT 1',
        ),
        ops.AlterModelOptions(
            name='TenantUsage',
            options={'table': 'tenant_usage', 'app': 'models', 'pk_attr': 'tenant_id', 'table_description': 'The latest usage applied for a tenant, one row each.'},
        ),
    ]
