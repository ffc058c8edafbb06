"""The Genesys Cloud shells: httpx for the Platform API, websockets for the notification stream.

Modules:
    auth       client-credentials tokens for every caller of one OAuth client (single flight)
    rest       the Platform API: budgets per endpoint family, one retry policy, typed calls
    client     open a connection: one httpx client, token provider and REST client
    directory  ask the org what a subscription file names: queues, members, codes, topics
    stream     the notification stream: carries out a ChannelSession's actions
    supervisor a shard's streams together: restart what crashed, end on a final failure
"""
