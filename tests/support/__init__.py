"""What the tests and the benchmarks (bench/) share, one copy of each.

content       the repository, a writable copy of its demo content
demo          the demo market's names; its prices changed and states read through the API
markets       small markets written into a temporary folder
live          the app under uvicorn in a thread of the test process (`LiveServer`)
processes     `holobazaar serve` as its own process (`ServeProcess`), API tokens, RSS
databases     throwaway PostgreSQL databases, Redis key prefixes, a private redis-server
streamclient  a v1 protocol client that checks the order of what it receives
syncsim       simulated show devices with worse networks and clocks
gltf          where the glTF corpus is; small (hostile) models made by hand
net           `free_port`, `wait_ready` (until `/healthz` answers)
waiting       `wait_for`, `wait_for_async` (poll a condition)

Test modules import them as `support.<module>` (tests/ is on pytest's path); bench scripts
put tests/ on their path through bench/benchlib.py.
"""
