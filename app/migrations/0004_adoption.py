from decimal import Decimal

from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.webhooks import WebhookDeliveryStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import UniqueConstraint

async def fill_translations_and_plan_prices(apps, schema_editor):
    """Rows made before this migration: catalog texts become their English entry, and every plan
    subscription keeps the price its plan had when this release arrived (issue 13: a later change of the
    catalog's price never alters what was contracted)."""
    import json

    client = schema_editor.client
    sqlite = client.capabilities.dialect == "sqlite"

    def mark(position):
        return "?" if sqlite else f"${position}"

    for table in ("plan", "add_on"):
        _, rows = await client.execute_query(f'SELECT "id", "name", "description" FROM "{table}"')
        for row in rows:
            names = json.dumps({"en": row["name"]})
            descriptions = json.dumps({"en": row["description"]} if row["description"] else {})
            cast = "" if sqlite else "::jsonb"
            await client.execute_query(
                f'UPDATE "{table}" SET "names" = {mark(1)}{cast}, "descriptions" = {mark(2)}{cast} '
                f'WHERE "id" = {mark(3)}',
                [names, descriptions, row["id"]],
            )
    _, rows = await client.execute_query(
        'SELECT s."id", p."prices", t."currency" FROM "plan_subscription" s '
        'JOIN "plan" p ON p."id" = s."plan_id" JOIN "tenant" t ON t."id" = s."tenant_id"'
    )
    for row in rows:
        prices = row["prices"] if isinstance(row["prices"], dict) else json.loads(row["prices"])
        price = prices.get(row["currency"])
        if price is None:  # a plan not priced in the tenant's currency: left to the catalog, as before
            continue
        await client.execute_query(
            f'UPDATE "plan_subscription" SET "unit_price" = {mark(1)}, "currency" = {mark(2)} '
            f'WHERE "id" = {mark(3)}',
            [price if sqlite else Decimal(price), row["currency"], row["id"]],
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0003_status_cancelling')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OperatorKey',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('prefix', fields.CharField(unique=True, max_length=16)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'operator_key', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A credential of the operator API (``/operator/graphql``). Only a SHA-256 hash of it is stored.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OperatorAuditEntry',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('operator_key', fields.ForeignKeyField('models.OperatorKey', source_field='operator_key_id', db_constraint=True, to_field='id', related_name='audit_entries', on_delete=OnDelete.RESTRICT)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', null=True, db_constraint=True, to_field='id', related_name='operator_audit_entries', on_delete=OnDelete.SET_NULL)),
                ('action', fields.CharField(max_length=64)),
                ('subject_id', fields.CharField(null=True, max_length=255)),
                ('details', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'operator_audit_entry', 'app': 'models', 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': 'One operator action: which key, what, on which environment (if any), and the details.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='QuoteRequest',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='quote_requests', on_delete=OnDelete.CASCADE)),
                ('add_on_code', fields.CharField(max_length=64)),
                ('message', fields.CharField(default='', max_length=2000)),
                ('requested_by', fields.CharField(max_length=254)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('handled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('handled_by', fields.ForeignKeyField('models.OperatorKey', source_field='handled_by_id', null=True, db_constraint=True, to_field='id', related_name='handled_quote_requests', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'quote_request', 'app': 'models', 'indexes': [Index(fields=['handled_at', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('url', fields.CharField(max_length=2048)),
                ('description', fields.CharField(default='', max_length=500)),
                ('event_types', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('is_active', fields.BooleanField(default=True)),
                ('secret_encrypted', fields.TextField(unique=False)),
                ('previous_secret_encrypted', fields.TextField(null=True, unique=False)),
                ('previous_secret_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_endpoint', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Where the SaaS hears of events: a URL, the event types it wants (none listed: all), and its signing'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message_id', fields.CharField(unique=True, max_length=64)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', null=True, db_constraint=True, to_field='id', related_name='webhook_events', on_delete=OnDelete.CASCADE)),
                ('event_type', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One event, once: its ``message_id`` is the Standard Webhooks ``webhook-id`` every delivery of it'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event', fields.ForeignKeyField('models.WebhookEvent', source_field='event_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('endpoint', fields.ForeignKeyField('models.WebhookEndpoint', source_field='endpoint_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('lane', fields.CharField(max_length=64)),
                ('status', fields.CharEnumField(default=WebhookDeliveryStatus.PENDING, description='PENDING: PENDING\nSUCCEEDED: SUCCEEDED\nDEAD: DEAD', enum_type=WebhookDeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('give_up_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('claimed_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_delivery', 'app': 'models', 'unique_together': (('event', 'endpoint'),), 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['endpoint_id', 'lane', 'status', 'event_id'])], 'pk_attr': 'id', 'table_description': 'One event to one endpoint: its attempts and outcome. Deliveries of the same environment (``lane``) to'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AddOn',
            name='descriptions',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='AddOn',
            name='names',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Plan',
            name='descriptions',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Plan',
            name='names',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='PlanSubscription',
            name='currency',
            field=fields.CharField(null=True, max_length=3),
        ),
        ops.AddField(
            model_name='PlanSubscription',
            name='unit_price',
            field=fields.DecimalField(null=True, max_digits=12, decimal_places=2),
        ),
        ops.AddField(
            model_name='Tenant',
            name='erp',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Tenant',
            name='locale',
            field=fields.CharField(default='en', db_default='en', max_length=16),
        ),
        ops.AddField(
            model_name='User',
            name='external_id',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='User',
            name='locale',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddConstraint(
            model_name='User',
            constraint=UniqueConstraint(fields=('tenant_id', 'external_id'), name=None),
        ),
        ops.RunPython(fill_translations_and_plan_prices, reverse_code=ops.RunPython.noop),
    ]
