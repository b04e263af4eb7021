from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import PlanChangeKind, PlanChangeSource, PlanChangeStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('models', '0004_adoption')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InvoiceSequence',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='invoice_sequences', on_delete=OnDelete.CASCADE)),
                ('year', fields.SmallIntField()),
                ('last_number', fields.IntField(default=0)),
            ],
            options={'table': 'invoice_sequence', 'app': 'models', 'unique_together': (('tenant', 'year'),), 'pk_attr': 'id', 'table_description': "The last number given in a tenant's series of a year: taken and raised in the transaction that"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IssuedInvoice',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.RESTRICT)),
                ('number', fields.CharField(unique=True, max_length=96)),
                ('year', fields.SmallIntField()),
                ('sequence', fields.IntField()),
                ('period_start', fields.DateField()),
                ('period_end', fields.DateField()),
                ('currency', fields.CharField(max_length=3)),
                ('subtotal', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('discount', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('total', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'issued_invoice', 'app': 'models', 'unique_together': (('tenant', 'period_start'), ('tenant', 'year', 'sequence')), 'indexes': [Index(fields=['tenant_id', 'issued_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IssuedInvoiceLine',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('invoice', fields.ForeignKeyField('models.IssuedInvoice', source_field='invoice_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.CASCADE)),
                ('position', fields.SmallIntField()),
                ('kind', fields.CharField(max_length=32)),
                ('code', fields.CharField(max_length=64)),
                ('description', fields.CharField(max_length=400)),
                ('quantity', fields.IntField()),
                ('unit_price', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('days', fields.SmallIntField(null=True)),
                ('amount', fields.DecimalField(max_digits=14, decimal_places=2)),
            ],
            options={'table': 'issued_invoice_line', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PlanChange',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='plan_changes', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='plan_changes', on_delete=OnDelete.SET_NULL)),
                ('source', fields.CharEnumField(default=PlanChangeSource.TENANT, description='TENANT: TENANT\nOPERATOR: OPERATOR', enum_type=PlanChangeSource, max_length=16)),
                ('kind', fields.CharEnumField(description='UPGRADE: UPGRADE\nDOWNGRADE: DOWNGRADE', enum_type=PlanChangeKind, max_length=16)),
                ('status', fields.CharEnumField(description='SCHEDULED: SCHEDULED\nAPPLIED: APPLIED\nCANCELLED: CANCELLED', enum_type=PlanChangeStatus, max_length=16)),
                ('from_plan', fields.ForeignKeyField('models.Plan', source_field='from_plan_id', db_constraint=True, to_field='id', related_name='changes_from', on_delete=OnDelete.RESTRICT)),
                ('from_code', fields.CharField(max_length=64)),
                ('from_name', fields.CharField(max_length=200)),
                ('from_unit_price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('to_plan', fields.ForeignKeyField('models.Plan', source_field='to_plan_id', db_constraint=True, to_field='id', related_name='changes_to', on_delete=OnDelete.RESTRICT)),
                ('to_code', fields.CharField(max_length=64)),
                ('to_name', fields.CharField(max_length=200)),
                ('to_unit_price', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('currency', fields.CharField(max_length=3)),
                ('change_fee', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('effective_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('applied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('idempotency_key', fields.CharField(null=True, max_length=128)),
                ('request_fingerprint', fields.CharField(null=True, max_length=64)),
                ('cancel_idempotency_key', fields.CharField(null=True, max_length=128)),
            ],
            options={'table': 'plan_change', 'app': 'models', 'unique_together': (('tenant', 'idempotency_key'), ('tenant', 'cancel_idempotency_key')), 'indexes': [Index(fields=['tenant_id', 'effective_at']), Index(fields=['status', 'effective_at'])], 'pk_attr': 'id', 'table_description': "One change of a tenant's plan, kept for ever: the invoices bill the plan in force on each day from"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AddOn',
            name='erp_prices',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='OutboxEmail',
            name='attachments',
            field=fields.JSONField(default=list, db_default=[], encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Plan',
            name='change_fees',
            field=fields.JSONField(default=dict, db_default={}, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='PlanSubscription',
            name='pending_change',
            field=fields.ForeignKeyField('models.PlanChange', source_field='pending_change_id', null=True, db_constraint=True, to_field='id', related_name='pending_for', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='QuoteRequest',
            name='idempotency_key',
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddConstraint(
            model_name='QuoteRequest',
            constraint=UniqueConstraint(fields=('tenant', 'idempotency_key'), name=None),
        ),
    ]
