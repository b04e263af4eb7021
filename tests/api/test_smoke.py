from tests.conftest import GraphQLClient


async def test_viewer_of_demo_admin(gql: GraphQLClient, demo: object) -> None:
    body = await gql.post("{ viewer { kind role tenant { slug } } }", as_="admin@acme.test")
    assert body == {"data": {"viewer": {"kind": "USER", "role": "ADMIN", "tenant": {"slug": "acme"}}}}
