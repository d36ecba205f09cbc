//! Property tests over generated input: parsing an inventory never panics, and every tag the
//! tool would produce is valid by the OCI grammar. A small seeded generator keeps runs
//! repeatable without a property-testing crate.

use crate::model::inventory::Inventory;
use crate::model::tags::{local_reference, published_references, BuildId};
use crate::testdir::TestDir;

/// xorshift64*: deterministic, fast, good enough to explore input shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// A string of up to `max` characters drawn from `alphabet`.
    fn string(&mut self, alphabet: &[char], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| alphabet[self.below(alphabet.len())]).collect()
    }
}

/// The tag grammar, written independently of `oci::tag_problem`: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(&b[0])
        && b[1..].iter().all(|c| word(c) || *c == b'.' || *c == b'-')
}

const TAG_CHARS: [char; 7] = ['a', 'Z', '0', '9', '.', '-', '_'];

const WEIRD: [char; 24] = [
    'a', 'Z', '0', '9', '.', '-', '_', '+', '/', ':', ' ', '\n', '"', '\'', '[', ']', '=', '#', 'é', '\u{0}',
    '\\', '{', '}', ',',
];

#[test]
fn build_ids_and_versions_only_ever_make_valid_tags() {
    let dir = TestDir::new("prop");
    dir.write("D", "FROM scratch\n");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tags_checked = 0;
    for _ in 0..20_000 {
        // Half from the tag alphabet (valid unless too long), half from anything.
        let id = if rng.below(2) == 0 { rng.string(&TAG_CHARS, 140) } else { rng.string(&WEIRD, 140) };
        let Ok(build_id) = BuildId::parse(&id) else { continue };
        let version = format!(
            "{}.{}.{}{}",
            rng.below(1000),
            rng.below(100),
            rng.below(100),
            rng.pick(&["", "-rc.1", "-alpha", "-0.3.7", "-x.7.z.92", "-a-b-c"])
        );
        let text =
            format!("registry = \"r.io/ns\"\n[images.a]\nversion = \"{version}\"\ndockerfile = \"D\"\n");
        let inventory = Inventory::parse(&dir.path().join("images.toml"), &text).expect(&version);
        let image = &inventory.images["a"];
        let local = local_reference(&inventory.registry, image);
        assert!(is_valid_tag(local.rsplit(':').next().unwrap()), "{local}");
        if let Ok(references) = published_references(&inventory.registry, image, &build_id) {
            for reference in references {
                let tag = reference.rsplit(':').next().unwrap();
                assert!(is_valid_tag(tag), "invalid tag {tag:?} from build id {id:?}");
                tags_checked += 1;
            }
        }
    }
    eprintln!("property: 20000 generated build ids, {tags_checked} published tags checked");
    assert!(tags_checked > 1000, "the generator found too few valid build ids: {tags_checked}");
}

#[test]
fn parsing_generated_inventories_never_panics() {
    let dir = TestDir::new("prop");
    dir.write("Dockerfile-a", "FROM scratch\n");
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let fragments = [
        "registry = \"ghcr.io/o/n\"\n",
        "registry = \"X\"\n",
        "registry = 5\n",
        "[test_package]\nname = \"test\"\ntag = \"t\"\nimage = \"a\"\n",
        "[images.a]\n",
        "[images.b]\n",
        "[images.\"B c\"]\n",
        "version = \"1.2.3\"\n",
        "version = \"1.2\"\n",
        "version = \"1.2.3+m\"\n",
        "dockerfile = \"Dockerfile-a\"\n",
        "dockerfile = \"../x\"\n",
        "context = \".\"\n",
        "push = false\n",
        "push = \"no\"\n",
        "depends_on = [\"a\"]\n",
        "depends_on = [\"b\"]\n",
        "build_args = { X = \"1\" }\n",
        "platforms = [\"linux/amd64\"]\n",
        "unknown = 1\n",
        "[[images]]\n",
        "= = =\n",
        "\"\n",
    ];
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..5_000 {
        // Half the documents start as a valid inventory, so edits near validity are explored too.
        let mut text = String::new();
        if rng.below(2) == 0 {
            text.push_str("registry = \"ghcr.io/o/n\"\n[images.a]\nversion = \"1.2.3\"\ndockerfile = \"Dockerfile-a\"\n");
        }
        for _ in 0..rng.below(if text.is_empty() { 12 } else { 3 }) {
            text.push_str(rng.pick(&fragments));
        }
        if rng.below(4) == 0 {
            text.push_str(&rng.string(&WEIRD, 20));
        }
        match Inventory::parse(&dir.path().join("images.toml"), &text) {
            Ok(inventory) => {
                accepted += 1;
                let id = BuildId::parse("1.1").unwrap();
                for image in inventory.images.values() {
                    for reference in published_references(&inventory.registry, image, &id).unwrap() {
                        assert!(is_valid_tag(reference.rsplit(':').next().unwrap()), "{reference}");
                    }
                }
            }
            Err(e) => {
                rejected += 1;
                // Every rejection names the file.
                assert!(e.to_string().contains("images.toml"), "{e}");
            }
        }
    }
    eprintln!("property: 5000 generated inventories, {accepted} accepted, {rejected} rejected, no panic");
    assert!(accepted > 50 && rejected > 50, "accepted {accepted}, rejected {rejected}");
}
