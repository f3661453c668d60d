import pytest

from hw.profiles import PROFILES, HwProfile, ProfileError, get_profile, load_profile


def test_builtin_profiles_pair_sparse_with_equal_mac_systolic():
    for n, (r, c) in {16: (4, 4), 64: (8, 8), 256: (16, 16)}.items():
        s, d = get_profile(f"sparse_pe_{n}"), get_profile(f"systolic_{r}x{c}")
        assert s.kind == "sparse" and d.kind == "systolic"
        assert s.n_pe == d.n_pe == r * c


def test_unknown_profile_lists_known():
    msg = r"unknown hardware profile 'nope'; known: .*sparse_pe_64"
    with pytest.raises(ProfileError, match=msg):
        get_profile("nope")


def test_yaml_profile_with_base_and_energy(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("base: sparse_pe_64\nname: fast64\nclock_hz: 4.0e8\nenergy: {mac_pj: 0.5}\n")
    p = load_profile(str(f))
    assert p.name == "fast64" and p.clock_hz == 4e8 and p.n_pe == 64
    assert p.energy.mac_pj == 0.5
    assert p.energy.sram_small_pj == PROFILES["sparse_pe_64"].energy.sram_small_pj
    assert HwProfile.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    "text, msg",
    [
        ("base: sparse_pe_64\nname: x\nn_pe: 0\n", "n_pe must be positive, got 0"),
        ("base: systolic_8x8\nname: x\nrows: 4\n", "n_pe=64 must equal rows\\*cols=32"),
        ("base: sparse_pe_64\nname: x\nfrac_bits: 16\n", "frac_bits=16 must be < operand_bits=16"),
        ("base: sparse_pe_64\nname: x\nwidth: 3\n", "unknown profile field 'width'"),
        (
            "base: sparse_pe_64\nname: x\nvector_lanes_per_pe: 0\n",
            "vector_lanes_per_pe must be positive, got 0",
        ),
        ("base: sparse_pe_64\nname: x\nenergy: {foo: 1}\n", "unknown energy field 'foo'"),
        ("base: sparse_pe_64\nname: x\nenergy: {mac_pj: -1}\n", "mac_pj must be a finite number"),
        ("kind: sparse\nn_pe: 4\n", "missing required profile field 'name'"),
        ("[1, 2\n", "is not valid YAML"),
    ],
)
def test_inconsistent_yaml_profiles_fail_precisely(tmp_path, text, msg):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ProfileError, match=msg):
        load_profile(str(f))


def test_profiles_listing_has_a_header_and_natural_order():
    from hw.profiles_cli import natural_key, profile_table

    lines = profile_table()
    assert lines[0].split()[:2] == ["profile", "kind"]
    names = [line.split()[0] for line in lines[1:]]
    assert names[:6] == [
        "sparse_pe_4", "sparse_pe_16", "sparse_pe_16_ecp5", "sparse_pe_64", "sparse_pe_64_xc7",
        "sparse_pe_256",
    ]  # fmt: skip
    # Columns line up, however long a name is.
    assert len({line.index(" sparse ") for line in lines if " sparse " in line}) == 1
    assert names.index("systolic_2x2") < names.index("systolic_4x4") < names.index("systolic_16x16")
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]
