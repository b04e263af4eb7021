from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import AddOnStatus
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_alert_publication_cart_quote')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='AddOnSubscription',
            name='status',
            field=fields.CharEnumField(default=AddOnStatus.ACTIVE, description='ACTIVE: ACTIVE\nCANCELLING: CANCELLING\nENDED: ENDED', enum_type=AddOnStatus, max_length=16),
        ),
        # One spelling of "cancelled" in the API (issue 12): stored statuses follow the enum's new value.
        ops.RunSQL(
            'UPDATE "add_on_subscription" SET "status" = \'CANCELLING\' WHERE "status" = \'CANCELING\'',
            reverse_sql='UPDATE "add_on_subscription" SET "status" = \'CANCELING\' WHERE "status" = \'CANCELLING\'',
        ),
    ]
