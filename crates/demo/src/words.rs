//! The vocabulary of the demo organisation: names, departments and their
//! title ladders, places, and the short texts people write in sessions,
//! feedback and goals. Everything here is plain data; the planner draws
//! from it with the seeded generator.

/// A department with its share of the headcount and the words of its
/// title ladders.
pub(crate) struct Department {
    pub name: &'static str,
    /// Relative headcount.
    pub weight: u32,
    /// The individual contributor role, e.g. "Software Engineer".
    pub ic_role: &'static str,
    /// The first-line manager role, e.g. "Engineering Manager".
    pub manager_role: &'static str,
    /// Skills people of this department bring.
    pub skills: &'static [&'static str],
}

/// In order of size; a small organisation takes the first few.
pub(crate) const DEPARTMENTS: &[Department] = &[
    Department {
        name: "Engineering",
        weight: 30,
        ic_role: "Software Engineer",
        manager_role: "Engineering Manager",
        skills: &["Rust", "TypeScript", "SQL", "Incident response", "System design", "Code review", "Kubernetes"],
    },
    Department {
        name: "Sales",
        weight: 16,
        ic_role: "Account Executive",
        manager_role: "Sales Manager",
        skills: &["Prospecting", "Negotiation", "Forecasting", "Discovery calls", "Salesforce"],
    },
    Department {
        name: "Customer Success",
        weight: 12,
        ic_role: "Customer Success Manager",
        manager_role: "Customer Success Lead",
        skills: &["Onboarding customers", "Renewals", "De-escalation", "Zendesk", "Training delivery"],
    },
    Department {
        name: "Product",
        weight: 9,
        ic_role: "Product Manager",
        manager_role: "Group Product Manager",
        skills: &["Roadmapping", "User research", "Prioritisation", "Writing specs", "Analytics"],
    },
    Department {
        name: "Marketing",
        weight: 9,
        ic_role: "Marketing Specialist",
        manager_role: "Marketing Manager",
        skills: &["Copywriting", "SEO", "Campaign planning", "Brand", "Events"],
    },
    Department {
        name: "Design",
        weight: 7,
        ic_role: "Product Designer",
        manager_role: "Design Manager",
        skills: &["Figma", "Prototyping", "Design systems", "Usability testing", "Illustration"],
    },
    Department {
        name: "Operations",
        weight: 6,
        ic_role: "Operations Analyst",
        manager_role: "Operations Manager",
        skills: &["Process design", "Vendor management", "Excel", "Procurement", "Planning"],
    },
    Department {
        name: "Finance",
        weight: 5,
        ic_role: "Financial Analyst",
        manager_role: "Finance Manager",
        skills: &["Budgeting", "Excel", "Financial modelling", "Audit", "Payroll"],
    },
    Department {
        name: "People",
        weight: 5,
        ic_role: "People Partner",
        manager_role: "People Operations Manager",
        skills: &["Recruiting", "Employee relations", "Compensation", "Onboarding", "Facilitation"],
    },
    Department {
        name: "Legal",
        weight: 3,
        ic_role: "Legal Counsel",
        manager_role: "Legal Manager",
        skills: &["Contract review", "Privacy", "Compliance", "Negotiation", "Policy writing"],
    },
];

/// The executive at the top of the tree.
pub(crate) const CEO_DEPARTMENT: &str = "Executive";

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Aisha",
    "Mateo",
    "Priya",
    "Kenji",
    "Fatima",
    "Lars",
    "Chloé",
    "Daniel",
    "Amara",
    "Tomás",
    "Mei",
    "Oliver",
    "Sofia",
    "Ravi",
    "Hannah",
    "Kwame",
    "Elena",
    "Jonas",
    "Leila",
    "Marcus",
    "Yuki",
    "Nadia",
    "Samuel",
    "Ingrid",
    "Diego",
    "Zara",
    "Ethan",
    "Ana",
    "Hiroshi",
    "Grace",
    "Omar",
    "Freya",
    "Lucas",
    "Imani",
    "Noah",
    "Valentina",
    "Arjun",
    "Maya",
    "Finn",
    "Nia",
    "Gabriel",
    "Lena",
    "Tariq",
    "Emma",
    "Jae-won",
    "Olivia",
    "Malik",
    "Sara",
    "Victor",
    "Chiara",
    "Kofi",
    "Isabel",
    "Adam",
    "Léa",
    "Ibrahim",
    "Julia",
    "Mohammed",
    "Camille",
    "Peter",
    "Ayumi",
    "Rosa",
    "Benjamin",
    "Ngozi",
    "Felix",
    "Alice",
    "Santiago",
    "Wei",
    "Martha",
    "Björn",
    "Layla",
    "Hugo",
    "Ruth",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Okafor",
    "García",
    "Sharma",
    "Tanaka",
    "Haddad",
    "Johansson",
    "Dubois",
    "Schmidt",
    "Mensah",
    "Silva",
    "Chen",
    "Walsh",
    "Rossi",
    "Patel",
    "Müller",
    "Boateng",
    "Popescu",
    "Novak",
    "Rahman",
    "Brown",
    "Nakamura",
    "Kowalski",
    "Adeyemi",
    "Larsen",
    "Fernández",
    "Khan",
    "Murphy",
    "Costa",
    "Yamamoto",
    "O'Brien",
    "Hassan",
    "Nilsen",
    "Martin",
    "Owusu",
    "Wright",
    "Moreno",
    "Iyer",
    "Kim",
    "Fischer",
    "Diallo",
    "Santos",
    "Jensen",
    "Ali",
    "Cohen",
    "Bianchi",
    "Nguyen",
    "Park",
    "Lindqvist",
    "Mwangi",
    "Reyes",
    "Becker",
    "Ahmed",
    "Taylor",
    "Sato",
    "Kaur",
    "Horvat",
    "Eriksen",
    "Lopez",
    "Abebe",
    "Clarke",
    "Varga",
    "Mahlaba",
    "Ito",
    "Petrov",
    "Wood",
    "Castillo",
];

/// Offices and their relative headcount.
pub(crate) const LOCATIONS: &[(&str, u32)] = &[
    ("London", 24),
    ("Berlin", 18),
    ("New York", 16),
    ("Lisbon", 10),
    ("Toronto", 8),
    ("Singapore", 6),
    ("Remote (Europe)", 12),
    ("Remote (Americas)", 8),
];

pub(crate) const EMAIL_DOMAIN: &str = "northwind-demo.example";

pub(crate) const INTERESTS: &[&str] = &[
    "Public speaking",
    "Giving feedback",
    "Career growth",
    "Leadership",
    "Time management",
    "Negotiation",
    "Mentoring",
    "Writing",
    "Data storytelling",
    "Systems thinking",
    "Customer empathy",
    "Conflict resolution",
    "Remote collaboration",
    "Product strategy",
    "Decision making",
    "Wellbeing",
    "Cross-team influence",
    "Facilitation",
];

pub(crate) const WANTS_TO_WORK_ON: &[&str] = &[
    "Getting more comfortable giving critical feedback.",
    "Speaking up earlier in meetings with senior people.",
    "Understanding how the rest of the company works.",
    "Saying no to work that does not fit our priorities.",
    "Presenting my work with more confidence.",
    "Delegating instead of doing everything myself.",
    "Finding my footing in a new team and a new domain.",
    "Building a network outside my own department.",
    "Handling disagreement without taking it personally.",
    "Planning my week so that deep work survives.",
    "Preparing for a move into a lead role.",
    "Asking for help before I am stuck for days.",
];

pub(crate) const ONBOARDING_FOCUS: &[&str] = &[
    "Navigating the first weeks",
    "How decisions get made here",
    "Building relationships across teams",
    "Asking for help without hesitation",
    "Preparing a first project demo",
    "Learning the product from the customer's side",
    "Setting up one-on-ones that work",
    "Finding focus time in a busy calendar",
    "Understanding the planning cycle",
    "Who to ask for what",
    "Reflecting on the first month",
    "Making sense of our acronyms",
];

pub(crate) const SKILL_FOCUS: &[&str] = &[
    "Running effective meetings",
    "Giving constructive feedback",
    "Presenting to senior stakeholders",
    "Negotiating priorities",
    "Delegating without micromanaging",
    "Handling difficult conversations",
    "Writing clear proposals",
    "Saying no gracefully",
    "Coaching instead of telling",
    "Managing up",
    "Influencing without authority",
    "Recovering from a setback",
];

pub(crate) const SESSION_NOTES: &[&str] = &[
    "",
    "",
    "Good energy today; agreed on a small experiment for next time.",
    "We role-played the conversation twice and the second run felt much calmer.",
    "Mostly listened this time; a lot was going on.",
    "Tried the what-if exercise on the upcoming reorg.",
    "Shared notes afterwards in our doc.",
    "Short one, but useful.",
];

pub(crate) const STRENGTHS: &[&str] = &[
    "Asks great open questions and lets me think.",
    "Really listens before responding.",
    "Brings calm to the conversation when I am stressed.",
    "Reflects back what I said so clearly that I hear it differently.",
    "Always comes prepared and follows up.",
    "Shares their own mistakes, which makes it easy to be honest.",
    "Keeps us on track without rushing.",
    "Very patient with my half-formed ideas.",
    "Encourages me to try things rather than wait for certainty.",
    "",
];

pub(crate) const IMPROVEMENTS: &[&str] = &[
    "Could leave a bit more silence before offering ideas.",
    "Sometimes jumps to solutions; I would like more questions first.",
    "Would love more direct feedback, even when it is uncomfortable.",
    "We could end with clearer next steps.",
    "Could check in on last session's commitments.",
    "Occasionally distracted by notifications.",
    "",
    "",
];

pub(crate) const GOAL_TITLES: &[&str] = &[
    "Lead a design review",
    "Present at the monthly all-hands",
    "Shadow three customer calls",
    "Ship my first feature end to end",
    "Run a retrospective for the team",
    "Write a proposal for the planning cycle",
    "Give feedback to a peer every week",
    "Complete the SQL fundamentals course",
    "Mentor a new joiner",
    "Hold a skip-level conversation",
    "Block two focus mornings every week",
    "Facilitate a cross-team workshop",
    "Publish an internal blog post",
    "Map the stakeholders of my project",
];

pub(crate) const GOAL_DESCRIPTIONS: &[&str] = &[
    "",
    "Agreed in our session; my partner will check in every other week.",
    "Something I have been postponing for too long.",
    "A stretch, but a realistic one for this quarter.",
];

pub(crate) const PROGRESS_NOTES: &[&str] = &[
    "Drafted the outline.",
    "Booked the slot.",
    "Halfway there.",
    "Got feedback from my lead.",
    "Slipped a week, back on track now.",
    "Did a dry run with my partner.",
    "",
];

pub(crate) const COMPLETION_NOTES: &[&str] = &["Done!", "Went better than expected.", "", "Finally."];

pub(crate) const ABANDON_REASONS: &[&str] = &[
    "Priorities changed after the planning cycle.",
    "No longer relevant after the team change.",
    "Replaced by a better-scoped goal.",
];

pub(crate) const CANCEL_REASONS: &[&str] =
    &["A customer escalation came up.", "Out sick.", "Clashed with the all-hands.", "Travelling that week.", ""];

pub(crate) const PAUSE_REASONS: &[&str] = &[
    "Holiday season.",
    "Quarter-end crunch.",
    "Product launch week after week.",
    "Parental leave.",
    "Team offsite and travel.",
];

pub(crate) const MISMATCH_NOTES: &[&str] = &[
    "Our schedules never lined up.",
    "Different expectations about the format.",
    "We agreed we would both get more from other partners.",
];

pub(crate) const COMPLETED_NOTES: &[&str] = &[
    "Onboarding done; we will keep having coffee.",
    "We reached what we set out to do.",
    "A great run, time for new partners.",
];

pub(crate) const WITHDRAW_REASONS: &[&str] =
    &["No time this quarter.", "Would rather try again next cohort.", "Moved to a role with its own mentoring."];

/// The ASCII form of a name for an e-mail local part: accents dropped,
/// spaces and apostrophes removed, lower case.
pub(crate) fn email_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c if c.is_ascii_alphanumeric() || c == '-' => c,
            _ => continue,
        };
        out.push(mapped);
    }
    out
}
