from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.metering import ProcessKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

# The starts counted before this migration, per kind: each counter's kind columns from its period's starts
# (every counted start has its row in process_start; a denied one left none).
BACKFILL_KIND_COUNTS = """UPDATE "process_counter" SET
    "product_sync" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'PRODUCT_SYNC'),
    "stock_update" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'STOCK_UPDATE'),
    "price_update" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'PRICE_UPDATE'),
    "customer_sync" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'CUSTOMER_SYNC'),
    "order_export" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'ORDER_EXPORT'),
    "invoice_import" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'INVOICE_IMPORT'),
    "delivery_notes" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'DELIVERY_NOTES'),
    "pending_orders" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'PENDING_ORDERS'),
    "database_update" = (SELECT COUNT(*) FROM "process_start" AS s WHERE s."tenant_id" = "process_counter"."tenant_id" AND s."period" = "process_counter"."period" AND s."process" = 'DATABASE_UPDATE')"""



class Migration(migrations.Migration):
    dependencies = [('models', '0005_billing_lifecycle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ProcessControl',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='process_controls', on_delete=OnDelete.CASCADE)),
                ('process', fields.CharEnumField(description='PRODUCT_SYNC: PRODUCT_SYNC\nSTOCK_UPDATE: STOCK_UPDATE\nPRICE_UPDATE: PRICE_UPDATE\nCUSTOMER_SYNC: CUSTOMER_SYNC\nORDER_EXPORT: ORDER_EXPORT\nINVOICE_IMPORT: INVOICE_IMPORT\nDELIVERY_NOTES: DELIVERY_NOTES\nPENDING_ORDERS: PENDING_ORDERS\nDATABASE_UPDATE: DATABASE_UPDATE', enum_type=ProcessKind, max_length=32)),
                ('paused', fields.BooleanField(default=False)),
                ('monthly_cap', fields.BigIntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by', fields.CharField(max_length=254)),
            ],
            options={'table': 'process_control', 'app': 'models', 'unique_together': (('tenant', 'process'),), 'pk_attr': 'id', 'table_description': "What a tenant's admins decided for one kind of process: paused, or capped per billing period."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProcessDay',
            fields=[
                ('product_sync', fields.BigIntField(default=0, db_default=0)),
                ('stock_update', fields.BigIntField(default=0, db_default=0)),
                ('price_update', fields.BigIntField(default=0, db_default=0)),
                ('customer_sync', fields.BigIntField(default=0, db_default=0)),
                ('order_export', fields.BigIntField(default=0, db_default=0)),
                ('invoice_import', fields.BigIntField(default=0, db_default=0)),
                ('delivery_notes', fields.BigIntField(default=0, db_default=0)),
                ('pending_orders', fields.BigIntField(default=0, db_default=0)),
                ('database_update', fields.BigIntField(default=0, db_default=0)),
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='process_days', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
            ],
            options={'table': 'process_day', 'app': 'models', 'unique_together': (('tenant', 'day'),), 'pk_attr': 'id', 'table_description': "The starts of one tenant's UTC day per kind, once the day is over: the usage history's rollup."},
            bases=['StartsPerKind'],
        ),
        ops.AlterModelOptions(
            name='ProcessCounter',
            options={'table': 'process_counter', 'app': 'models', 'unique_together': (('tenant', 'period'),), 'pk_attr': 'id', 'table_description': 'Processes started by a tenant in one billing period, in all and per kind. Changed only by conditional'},
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='customer_sync',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='database_update',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='delivery_notes',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='invoice_import',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='order_export',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='pending_orders',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='price_update',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='product_sync',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ProcessCounter',
            name='stock_update',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddIndex(
            model_name='ProcessStart',
            index=Index(fields=['tenant_id', 'process', 'started_at']),
        ),
        ops.AddField(
            model_name='Tenant',
            name='alert_recipients',
            field=fields.JSONField(default=list, db_default=[], encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AlterModelOptions(
            name='UsageReport',
            options={'table': 'usage_report', 'app': 'models', 'unique_together': (('tenant', 'idempotency_key'),), 'indexes': [Index(fields=['tenant_id', 'measured_at'])], 'pk_attr': 'id', 'table_description': 'Every report received, applied or not: the idempotency record, the audit trail and the usage history'},
        ),
        ops.AddIndex(
            model_name='UsageReport',
            index=Index(fields=['tenant_id', 'measured_at']),
        ),
        ops.RunSQL(BACKFILL_KIND_COUNTS, reverse_sql='SELECT 1'),
    ]
