# Sourced by the guest's command script, inside the guest: two SoftRoCE devices on the two ends of a
# veth, so that RDMA traffic really crosses a netdev (where tc and XDP programs see it).
# Why one namespace: the guest kernel's rxe (6.1) opens its UDP port 4791 in the initial namespace
# only, so an rxe device on a veth end inside another namespace never receives (verified: perftest
# fails with completion status 2, rping with UNREACHABLE). Why the routing rules: both addresses are
# local, and local routes would carry the packets over lo (where two rxe devices hang); locally
# generated packets to the peer address are routed out of the veth instead (table 200 before local).
# rdma_cm does not connect in this layout (it sees the peer address as local and the CM request is
# rejected), so queue pairs are connected out of band over TCP, as perftest does by default.
# fxa/fxb are names for the initial namespace, so that `ip netns exec fxa …` reads like a node.
set -e
ip link set lo up
ip link add fxa0 type veth peer name fxb0
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_local=1
ip addr add 10.77.0.1/32 dev fxa0
ip addr add 10.77.0.2/32 dev fxb0
for d in fxa0 fxb0; do
  sysctl -qw net.ipv4.conf.$d.rp_filter=0 net.ipv4.conf.$d.accept_local=1
  ip link set $d up
done
ip route add 10.77.0.2 dev fxa0 src 10.77.0.1 table 200
ip route add 10.77.0.1 dev fxb0 src 10.77.0.2 table 200
ip rule add pref 100 iif lo lookup 200
ip rule del pref 0 lookup local
ip rule add pref 1000 lookup local
rdma link add rxe_a type rxe netdev fxa0
rdma link add rxe_b type rxe netdev fxb0
ip netns attach fxa 1
ip netns attach fxb 1
# the GID of the device's IPv4 address (index 0 is the IPv6 link-local one)
export FXH_GUEST_NS_A=fxa FXH_GUEST_NS_B=fxb FXH_GUEST_ADDR_A=10.77.0.1 FXH_GUEST_ADDR_B=10.77.0.2 FXH_GUEST_DEV_A=rxe_a FXH_GUEST_DEV_B=rxe_b FXH_GUEST_GID_INDEX=1
set +e
